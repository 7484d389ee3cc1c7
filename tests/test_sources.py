import os
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import write_cifar10_dir, write_cifar_batch, write_idx, write_mnist_dir
from ltdistill.data.cifar import safe_unpickle
from ltdistill.data.idx import read_idx
from ltdistill.data.sources import SOURCES, is_available, load_source
from ltdistill.errors import BadInput


def test_digits_is_embedded_and_upsampled_to_16px():
    raw = load_source("digits")
    assert raw.train.images.shape[1:] == (1, 16, 16) and raw.num_classes == 10
    assert len(raw.train.labels) + len(raw.test.labels) == 1797
    assert is_available("digits")


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_round_trip(tmp_path, compress):
    write_mnist_dir(tmp_path / "mnist", compress=compress)
    raw = load_source("mnist", tmp_path)
    assert raw.train.images.shape == (40, 1, 28, 28) and raw.test.labels.tolist()[:3] == [0, 1, 2]


def test_fashion_mnist_found_through_env_var(tmp_path, monkeypatch):
    write_mnist_dir(tmp_path / "fashion-mnist")
    monkeypatch.setenv("LTDISTILL_DATA", str(tmp_path))
    assert load_source("fashion-mnist").class_names[0] == "T-shirt/top"


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), cut=st.integers(1, 50))
def test_idx_reader_round_trips_any_shape_and_rejects_truncation(tmp_path_factory, shape, cut):
    path = tmp_path_factory.mktemp("idx") / "x-idx"
    array = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    write_idx(path, array)
    assert (read_idx(path) == array).all()
    data = path.read_bytes()
    path.write_bytes(data[: max(0, len(data) - cut)])
    with pytest.raises(BadInput):
        read_idx(path)


def test_missing_files_name_what_was_looked_for(tmp_path):
    with pytest.raises(BadInput, match="train-images-idx3-ubyte.*looked in"):
        load_source("mnist", tmp_path)


def test_cifar10_and_cifar100_pickles(tmp_path):
    write_cifar10_dir(tmp_path, [20] * 5, 10)
    raw = load_source("cifar10", tmp_path)
    assert raw.train.images.shape == (100, 3, 32, 32) and raw.class_names[3] == "n3"

    root = tmp_path / "cifar-100-python"
    root.mkdir()
    write_cifar_batch(root / "train", 200, b"fine_labels", classes=100)
    write_cifar_batch(root / "test", 100, b"fine_labels", classes=100)
    with open(root / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [b"x"] * 100}, f, protocol=2)
    assert load_source("cifar100", tmp_path).num_classes == 100


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/ltdistill-pwned",))


def test_a_pickle_that_executes_code_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, f)
    with pytest.raises(BadInput, match="unsafe"):
        safe_unpickle(path)
    assert not os.path.exists("/tmp/ltdistill-pwned")


def _write_jpeg(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), color).save(path)


def test_tiny_imagenet_folders(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02"]
    root.mkdir()
    (root / "wnids.txt").write_text("\n".join(wnids))
    for k, w in enumerate(wnids):
        for i in range(3):
            _write_jpeg(root / "train" / w / "images" / f"{w}_{i}.JPEG", (k * 200, 0, 0))
    _write_jpeg(root / "val" / "images" / "val_0.JPEG", (0, 0, 0))
    _write_jpeg(root / "val" / "images" / "val_1.JPEG", (200, 0, 0))
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t1\t1\nval_1.JPEG\tn02\t0\t0\t1\t1\n")
    raw = load_source("tiny-imagenet", tmp_path)
    assert raw.train.images.shape == (6, 3, 64, 64) and raw.test.labels.tolist() == [0, 1]
    assert raw.train.images[3, 0].mean() > 150  # class n02 is red
    for name in ("wnids.txt", "val/val_annotations.txt"):  # a list that is not UTF-8: a traceback before
        kept = (root / name).read_bytes()
        (root / name).write_bytes(b"\xff\xfe")
        with pytest.raises(BadInput, match=rf"tiny-imagenet: .*{name.split('/')[-1]} is not a readable text file"):
            load_source("tiny-imagenet", tmp_path)
        (root / name).write_bytes(kept)


def test_imagenet_lt_split_lists(tmp_path):
    lines = []
    for c, n in enumerate([4, 2, 1]):
        for i in range(n):
            rel = f"train/n{c}/img{i}.JPEG"
            _write_jpeg(tmp_path / rel, (c * 100, 0, 0))
            lines.append(f"{rel} {c}")
    (tmp_path / "ImageNet_LT_train.txt").write_text("\n".join(lines))
    test_lines = []
    for c in range(3):
        rel = f"val/v{c}.JPEG"
        _write_jpeg(tmp_path / rel, (c * 100, 0, 0))
        test_lines.append(f"{rel} {c}")
    (tmp_path / "ImageNet_LT_test.txt").write_text("\n".join(test_lines))
    raw = load_source("imagenet-lt", tmp_path)
    assert raw.native_longtail and np.bincount(raw.train.labels).tolist() == [4, 2, 1]
    (tmp_path / "ImageNet_LT_train.txt").write_text("no label here\n")
    with pytest.raises(BadInput, match="path label"):
        load_source("imagenet-lt", tmp_path)
    (tmp_path / "ImageNet_LT_train.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(BadInput, match="imagenet-lt: .*ImageNet_LT_train.txt is not a readable text file"):
        load_source("imagenet-lt", tmp_path)


def test_every_source_has_a_how_to_get_line():
    assert set(SOURCES) == {"digits", "fashion-mnist", "mnist", "cifar10", "cifar100", "tiny-imagenet",
                            "imagenet-lt"}
    assert all(s.how_to_get for s in SOURCES.values())


def test_unknown_dataset():
    with pytest.raises(BadInput, match="unknown dataset 'svhn'"):
        load_source("svhn")


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=5, max_size=5), test_n=st.integers(1, 12),
       seed=st.integers(0, 2**16))
def test_cifar_reader_round_trips_any_batch_sizes(tmp_path_factory, sizes, test_n, seed):
    root = write_cifar10_dir(tmp_path_factory.mktemp("c10"), sizes, test_n, seed=seed, names=[b"c"] * 10)
    raw = load_source("cifar10", root.parent)
    assert raw.train.images.shape == (sum(sizes), 3, 32, 32) and len(raw.test.labels) == test_n
    first = np.random.default_rng(seed + 1).integers(0, 256, (sizes[0], 3072), dtype=np.uint8)
    assert (raw.train.images[: sizes[0]].reshape(sizes[0], -1) == first).all()


@settings(max_examples=8, deadline=None)
@given(counts=st.lists(st.integers(1, 3), min_size=1, max_size=3), size=st.sampled_from([8, 16, 64]))
def test_imagenet_lt_reader_round_trips_lossless_images(tmp_path_factory, counts, size):
    root = tmp_path_factory.mktemp("inlt")
    rng = np.random.default_rng(0)
    lines, expected = [], []
    for c, n in enumerate(counts):
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            rel = f"train/n{c}/{i}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / rel)
            lines.append(f"{rel} {c}")
            expected.append(pixels.transpose(2, 0, 1))
    (root / "ImageNet_LT_train.txt").write_text("\n".join(lines))
    (root / "ImageNet_LT_test.txt").write_text("\n".join(lines))
    raw = load_source_with_size(root, size)
    assert (raw.train.images == np.stack(expected)).all()
    assert np.bincount(raw.train.labels).tolist() == counts


def load_source_with_size(root, size):
    from ltdistill.data.folders import load_imagenet_lt

    return load_imagenet_lt([root], size=size)
