"""Adversarial inputs (issue 45): writes never go through a planted link, tiny files never ask for huge memory,
divergence is never scored silently, a run that skipped too much is not passed off as a result, and a full disk
never loses an evaluation's metrics. Bad input: one line on stderr, exit 2, nothing on disk changed."""

import errno
import gzip
import json
import os
import pickle
import struct
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ltdistill.cli import main
from ltdistill.data.cifar import safe_unpickle
from ltdistill.data.idx import read_idx
from ltdistill.errors import BadInput, Diverged
from ltdistill.synthetic import SyntheticSet

BOUNDED = 200 * 2**20  # bytes: what reading a tiny malicious file may cost at most


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def small_set(**meta) -> SyntheticSet:
    return SyntheticSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), meta=meta)


def plant_link(at: Path, target: Path) -> None:
    at.symlink_to(target)


def strict_json(data: bytes | str):
    """json.loads that refuses NaN/Infinity, as every other JSON parser does."""
    def refuse(name):
        raise ValueError(f"bare {name} is not JSON")

    return json.loads(data, parse_constant=refuse)


# -- 1. writes never follow a planted link -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [".meta.json.tmp-{pid}", ".synthetic.safetensors.tmp-{pid}"])
def test_a_link_planted_at_a_temporary_name_is_never_written_through(tmp_path, name):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    plant_link(out / name.format(pid=os.getpid()), victim)
    small_set().save(out)
    assert victim.read_text() == "keep me"
    assert not (out / "meta.json").is_symlink() and not (out / "synthetic.safetensors").is_symlink()
    assert SyntheticSet.load(out).images.shape == (2, 1, 4, 4)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_the_writability_probe_never_opens_a_planted_link(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    plant_link(out / f".ltdistill-probe-{os.getpid()}", victim)
    code, _, err = run(capsys, "distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc",
                       "1", "--out", str(out), "--no-progress")
    assert code == 0, err
    assert victim.read_text() == "keep me"


def test_a_link_at_the_final_name_is_refused_and_left_as_it_is(tmp_path, capsys):
    """We never create links, so one at our name is not ours: refused (BadInput), not replaced, not followed."""
    from ltdistill.safe_io import atomic_write_bytes

    target = tmp_path / "elsewhere.json"  # dangling: a link to where the planter wants a file created
    out = tmp_path / "out"
    out.mkdir()
    plant_link(out / "meta.json", target)
    with pytest.raises(BadInput, match="already holds a result"):  # an artifact directory: refused up front
        small_set().save(out)
    code, _, err = run(capsys, "distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc",
                       "1", "--out", str(out), "--no-progress")
    assert code == 2 and "already holds a result" in one_line(err)
    plant_link(tmp_path / "r.json", target)
    code, _, err = run(capsys, "evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--epochs", "1",
                       "--runs", "1", "--json", str(tmp_path / "r.json"), "--no-progress")
    assert code == 2 and "exists" in one_line(err)
    with pytest.raises(BadInput, match="is a symlink"):  # the helper itself, for every other writer
        atomic_write_bytes(tmp_path / "r.json", b"{}")
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(BadInput, match="is a directory"):
        atomic_write_bytes(tmp_path / "a-directory", b"{}")
    assert (out / "meta.json").is_symlink() and (tmp_path / "r.json").is_symlink() and not target.exists()
    assert sorted(p.name for p in out.iterdir()) == ["meta.json"]


@pytest.mark.parametrize("taken", ["dangling link", "file"])
def test_an_out_whose_name_is_taken_says_by_what(tmp_path, capsys, taken):
    """mkdir's own error says only "File exists"; the line names a dangling link's target or a file."""
    out = tmp_path / "out"
    if taken == "file":
        out.write_text("keep me")
    else:
        out.symlink_to(tmp_path / "gone")
    code, _, err = run(capsys, "distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc",
                       "1", "--out", str(out), "--no-progress")
    expected = "exists and is not a directory" if taken == "file" else f"a link to {tmp_path / 'gone'}, which does not"
    assert code == 2 and expected in one_line(err)
    with pytest.raises(BadInput, match=expected):  # the API's writers say the same
        small_set().save(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and os.path.lexists(out)


def test_an_evaluation_run_in_progress_is_never_saved_through_a_planted_link(tmp_path):
    from ltdistill.evaluate.runstore import PartialRun

    victim = tmp_path / "victim"
    victim.write_text("keep me")
    path = tmp_path / "runs" / "partial-seed0-abc.pt"
    path.parent.mkdir()
    plant_link(path.with_name(f".{path.name}"), victim)  # the name the partial run was first written under
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    PartialRun(path, every_s=0.0).save(1, model, optimizer, torch.Generator())
    assert victim.read_text() == "keep me"
    assert path.is_file() and not path.is_symlink()
    assert PartialRun(path).restore(model, optimizer, torch.Generator()) == 1


# -- 2. tiny inputs never ask for unbounded memory --------------------------------------------------------------


def peak_bytes_of(fn) -> int:
    """The most memory Python and numpy held at once while fn ran (fn's BadInput is expected and swallowed)."""
    tracemalloc.start()
    try:
        with pytest.raises(BadInput):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def idx_header(dims, ndim=None) -> bytes:
    return bytes([0, 0, 0x08, len(dims) if ndim is None else ndim]) + b"".join(struct.pack(">I", d) for d in dims)


def test_a_gzip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    """1 MB of gzip that inflates to 512 MB behind a header declaring 16 bytes: the reader stops at byte 17."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    zeros = gzip.compress(bytes(16 * 2**20), compresslevel=9)  # one gzip member of 16 MB of zeros, ~16 KB
    with open(path, "wb") as f:
        f.write(gzip.compress(idx_header([16]) + bytes(16)))
        for _ in range(32):  # concatenated members are one gzip stream
            f.write(zeros)
    assert path.stat().st_size < 2**20
    assert peak_bytes_of(lambda: read_idx(path)) < BOUNDED
    with pytest.raises(BadInput, match="more data than its header declares"):
        read_idx(path)


BAD_IDX = {
    "magic cut short": (b"\x00\x00\x08", "bad magic"),
    "a zip": (b"PK\x03\x04" + bytes(16), "bad magic"),
    "ndim 255": (idx_header([], ndim=255) + bytes(40), "dimensions"),
    "dims overflow": (idx_header([2**32 - 1] * 3), "declares"),  # 8e28 bytes: an int64 product would wrap
    "header only": (idx_header([60000, 28]), "truncated"),
}


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("data, match", BAD_IDX.values(), ids=BAD_IDX)
def test_a_malformed_idx_header_is_one_line_of_bad_input(tmp_path, data, match, compress):
    path = tmp_path / ("x-idx.gz" if compress else "x-idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    assert peak_bytes_of(lambda: read_idx(path)) < BOUNDED
    with pytest.raises(BadInput, match=match):
        read_idx(path)


def test_a_corrupt_gzip_is_bad_input(tmp_path):
    good = gzip.compress(idx_header([4]) + bytes(range(4)))
    path = tmp_path / "x-idx.gz"
    for data in (good[:10] + bytes(len(good) - 10), good[:-8] + b"\xff" * 8, b"\x1f\x8b" + b"\xff" * 30):
        path.write_bytes(data)  # garbage deflate data, a wrong CRC, a broken gzip header
        with pytest.raises(BadInput, match=str(path)):
            read_idx(path)


class _Call:
    """Pickles as `func(*args)`: the reduce a crafted pickle may name, whatever the real object is."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Build(_Call):
    """Pickles as `func(*args)` then BUILD with `state` (what an ndarray's pickle does with its pixels)."""

    def __init__(self, func, args, state):
        super().__init__(func, *args)
        self.state = state

    def __reduce__(self):
        return self.func, self.args, self.state


def _reconstruct():
    from numpy._core.multiarray import _reconstruct

    return _reconstruct


HUGE = (2**50,)
MALICIOUS_PICKLES = {
    "ndarray(shape)": lambda: pickle.dumps({b"data": _Call(np.ndarray, HUGE), b"labels": [0]}, protocol=2),
    "_reconstruct(shape)": lambda: pickle.dumps({b"data": _Call(_reconstruct(), np.ndarray, HUGE, b"b"),
                                                 b"labels": [0]}, protocol=2),
    "setstate(shape, 1 byte)": lambda: pickle.dumps(
        {b"data": _Build(_reconstruct(), (np.ndarray, (0,), b"b"), (1, HUGE, np.dtype("u1"), False, b"x")),
         b"labels": [0]}, protocol=2),
    "huge void dtype": lambda: pickle.dumps({b"data": _Call(np.dtype, ("V", 2**40)), b"labels": [0]}, protocol=2),
    "bytes of declared length 2**50": lambda: b"\x80\x04\x8e" + struct.pack("<Q", 2**50) + b"abc.",
    "memo index 2**25": lambda: b"\x80\x02N" + b"r" + struct.pack("<I", 2**25) + b".",  # a 512 MB memo table
}


@pytest.mark.parametrize("name", MALICIOUS_PICKLES)
def test_a_tiny_pickle_that_asks_for_petabytes_is_refused(tmp_path, name):
    path = tmp_path / "data_batch_1"
    path.write_bytes(MALICIOUS_PICKLES[name]())
    assert path.stat().st_size < 300
    assert peak_bytes_of(lambda: safe_unpickle(path)) < BOUNDED


def _py2_str(text: bytes) -> bytes:
    return b"U" + bytes([len(text)]) + text  # SHORT_BINSTRING: a Python 2 str, bytes under encoding="bytes"


def python2_batch(pixels: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR batch as the dataset's files hold it: Python 2 cPickle, protocol 2, str as BINSTRING, numpy.core."""
    raw = pixels.tobytes()
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + _py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R"
             + b"(K\x01M" + struct.pack("<H", pixels.shape[0]) + b"M" + struct.pack("<H", pixels.shape[1]) + b"\x86"
             + dtype + b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb")
    label_list = b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"e"
    return b"\x80\x02}(" + _py2_str(b"data") + array + _py2_str(b"labels") + label_list + b"u."


def test_a_cifar_batch_as_python2_wrote_it_still_loads(tmp_path):
    """The stand-ins rebuild what numpy's own unpickling rebuilds from the real files' form."""
    from ltdistill.data.cifar import _read_batches

    pixels = (np.arange(3 * 3072) % 251).astype(np.uint8).reshape(3, 3072)
    path = tmp_path / "data_batch_1"
    path.write_bytes(python2_batch(pixels, [3, 7, 9]))
    assert (pickle.loads(path.read_bytes(), encoding="bytes")[b"data"] == pixels).all()  # the form is numpy's
    split = _read_batches([path], "labels")
    assert (split.images.reshape(3, 3072) == pixels).all() and split.labels.tolist() == [3, 7, 9]


@pytest.mark.parametrize("labels", [[0, "1"], [0, 1.5], [0, [1]], [True, False], "01", np.array([0.0, 1.0])])
def test_cifar_labels_must_be_integers(tmp_path, capsys, labels):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": labels}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"] * 10}, protocol=2))
    code, _, err = run(capsys, "distill", "--method", "random", "--dataset", "cifar10", "--imbalance", "1", "--ipc",
                       "1", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 2 and "labels must be integers" in one_line(err)


def test_cifar_data_must_be_a_uint8_array(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": [[0] * 3072] * 2, b"labels": [0, 1]}, protocol=2))
    from ltdistill.data.cifar import _read_batches

    with pytest.raises(BadInput, match="uint8 array"):
        _read_batches([path], "labels")


# -- 3. divergence is refused or reported, never scored silently -----------------------------------------------


@pytest.mark.parametrize("lr", ["nan", "inf", "-1", "0"])
def test_evaluate_lr_must_be_finite_and_positive(tmp_path, capsys, lr):
    code, _, err = run(capsys, "evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--epochs", "1",
                       "--runs", "1", "--lr", lr, "--json", str(tmp_path / "r.json"), "--no-progress")
    assert code == 2 and "--lr" in one_line(err)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("option, match", [(["--labels", "adsa"], "class labels only"),
                                           (["--labels", "stored"], "class labels only"),
                                           (["--teacher-from", "elsewhere"], "--teacher-from"),
                                           (["--snapshots"], "--snapshots")])
def test_evaluate_full_refuses_what_acts_on_a_sets_labels_teacher_or_kept_sets(tmp_path, capsys, option, match):
    """The full long-tailed set has class labels and nothing else: an option that would calibrate, replace or add
    to a set's labels is refused before any training, not silently ignored."""
    code, _, err = run(capsys, "evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--epochs", "1",
                       "--runs", "1", *option, "--json", str(tmp_path / "r.json"), "--runs-dir",
                       str(tmp_path / "runs"), "--no-progress")
    assert code == 2 and match in one_line(err)
    assert not list(tmp_path.iterdir())


def test_evaluate_refuses_a_teacher_made_from_other_data(tmp_path, capsys):
    """--teacher-from relabels a set with another set's teacher (DD-Ranking's baseline): a teacher that learned
    another class order (another tail) is refused before any training, as a set evaluated on other data is."""
    common = ["--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--no-progress"]
    assert run(capsys, "distill", "--method", "sre2l", *common, "--class-order", "random:1", "--set", "epochs=1",
               "--set", "iterations=1", "--out", str(tmp_path / "teacher"))[0] == 0
    assert run(capsys, "distill", "--method", "random", *common, "--out", str(tmp_path / "set"))[0] == 0
    code, _, err = run(capsys, "evaluate", str(tmp_path / "set"), "--teacher-from", str(tmp_path / "teacher"),
                       "--runs", "1", "--epochs", "1", "--json", str(tmp_path / "r.json"), "--no-progress")
    assert code == 2 and "--teacher-from" in one_line(err) and "class_order 'random:1'" in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("option", [["--cls-epochs", "5"], ["--maxnorm", "0.1"], ["--cls-sampler", "draws"]])
def test_experts_refuses_a_classifier_expert_option_without_decoupled(tmp_path, capsys, option):
    """Standard experts have no classifier experts: their options are refused, not silently ignored, and with
    --decoupled they reach the buffer's config."""
    common = ["experts", "--dataset", "digits", "--imbalance", "10", "--num", "1", "--epochs", "1", "--width", "4",
              "--no-progress", *option]
    code, _, err = run(capsys, *common, "--out", str(tmp_path / "standard"))
    assert code == 2 and option[0] in one_line(err) and "--decoupled" in one_line(err)
    assert not list(tmp_path.iterdir())
    assert run(capsys, *common, "--decoupled", "--out", str(tmp_path / "decoupled"))[0] == 0
    config = json.loads((tmp_path / "decoupled" / "accuracy.json").read_text())[0]["config"]
    field, value = option[0][2:].replace("-", "_"), option[1]
    assert config[field] == (float(value) if field == "maxnorm" else int(value) if field == "cls_epochs" else value)


@pytest.mark.parametrize("index", ["", "[1, 2]", b"\xff\xfe"])
def test_an_out_holding_a_corrupt_expert_index_is_one_line(tmp_path, capsys, index):
    """experts --out DIR (or distill --experts DIR) whose index.json is not a JSON object: a JSONDecodeError's
    traceback before, for the command that would resume the buffer."""
    (tmp_path / "buffer").mkdir()
    target = tmp_path / "buffer" / "index.json"
    target.write_bytes(index) if isinstance(index, bytes) else target.write_text(index)
    code, _, err = run(capsys, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "1", "--epochs", "1",
                       "--width", "4", "--no-progress", "--out", str(tmp_path / "buffer"))
    assert code == 2 and "index.json is corrupt" in one_line(err)
    code, _, err = run(capsys, "distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10", "--ipc", "1",
                       "--experts", str(tmp_path / "buffer"), "--out", str(tmp_path / "set"), "--no-progress")
    assert code == 2 and "index.json is corrupt" in one_line(err) and not (tmp_path / "set").exists()
    assert sorted(p.name for p in (tmp_path / "buffer").iterdir()) == ["index.json"]


def test_a_buffer_index_whose_fields_are_of_another_kind_is_one_line(tmp_path, capsys):
    """A hand-edited index.json that is JSON but holds a model, its options or the whitening of another kind: a
    TypeError from the model registry or from the whitening before."""
    buffer = tmp_path / "buffer"
    assert run(capsys, "experts", "--dataset", "digits", "--imbalance", "10", "--num", "1", "--epochs", "1",
               "--width", "4", "--no-progress", "--out", str(buffer))[0] == 0
    kept = json.loads((buffer / "index.json").read_text())
    for field, value in (("model", {"a": 1}), ("model_options", "x"), ("zca_eps", "x"), ("decoupled", "no")):
        (buffer / "index.json").write_text(json.dumps({**kept, field: value}))
        code, _, err = run(capsys, "distill", "--method", "mtt", "--dataset", "digits", "--imbalance", "10",
                           "--ipc", "1", "--experts", str(buffer), "--out", str(tmp_path / "set"), "--no-progress")
        assert code == 2 and "index.json" in one_line(err) and not (tmp_path / "set").exists(), field


def test_a_sets_label_records_of_another_kind_are_one_line(tmp_path, capsys):
    """meta.json's teacher record and per-image classes, hand-edited to another kind, reached dict, float and tensor
    errors when the set was evaluated."""
    art = tmp_path / "sre2l"
    assert run(capsys, "distill", "--method", "sre2l", "--dataset", "digits", "--imbalance", "10", "--ipc", "1",
               "--set", "epochs=1", "--set", "iterations=1", "--set", "width=4", "--out", str(art),
               "--no-progress")[0] == 0
    kept = json.loads((art / "meta.json").read_text())
    teacher = kept["teacher"]
    for field, value, said in (("teacher", "x", "teacher must be"), ("teacher", {}, "teacher must be"),
                               ("teacher", {**teacher, "options": "x"}, "teacher must be"),
                               ("teacher", {**teacher, "temperature": "4"}, "teacher must be"),
                               ("teacher", {**teacher, "temperature": -1}, "teacher must be"),
                               ("classes", "x", "classes must list"), ("classes", [0], "classes must list"),
                               ("classes", list(range(10, 20)), "classes must list")):
        (art / "meta.json").write_text(json.dumps({**kept, field: value}))
        code, _, err = run(capsys, "evaluate", str(art), "--runs", "1", "--epochs", "1", "--no-progress")
        assert code == 2 and said in one_line(err), (field, value)
    (art / "meta.json").write_text(json.dumps(kept))
    assert run(capsys, "evaluate", str(art), "--runs", "1", "--epochs", "1", "--no-progress")[0] == 0


def test_a_run_that_diverges_in_its_last_epoch_is_caught(blob_data):
    """lr NaN: the first epoch's losses are finite (each is computed before its step), the weights after it are not."""
    from ltdistill import models
    from ltdistill.train import TrainConfig, TrainingDiverged, train_model

    model = models.create("mlp", channels=1, num_classes=4, im_size=(8, 8))
    with pytest.raises(TrainingDiverged) as caught:
        train_model(model, blob_data.train_x[:32], blob_data.train_y[:32], TrainConfig(epochs=1, lr=float("nan")),
                    generator=torch.Generator().manual_seed(0))
    assert caught.value.epoch == 1


def test_an_artifact_holding_nan_or_inf_is_refused_at_load(tmp_path, capsys):
    art = tmp_path / "art"
    SyntheticSet(torch.zeros(10, 1, 16, 16), torch.arange(10),
                 meta={"dataset": "digits", "imbalance_factor": 10.0, "profile": "exp", "data_seed": 0}).save(art)
    images = torch.zeros(10, 1, 16, 16)
    images[3, 0, 2, 2] = float("inf")
    save_file({"images": images, "labels": torch.arange(10)}, str(art / "synthetic.safetensors"))
    with pytest.raises(BadInput, match="NaN/Inf"):
        SyntheticSet.load(art)
    code, _, err = run(capsys, "evaluate", str(art), "--runs", "1", "--epochs", "1", "--no-progress")
    assert code == 2 and "NaN/Inf" in one_line(err)


def test_every_json_written_is_valid_json(tmp_path):
    """NaN/Inf anywhere in what is written (meta, evaluation runs) becomes null, never a bare NaN."""
    from ltdistill.evaluate.metrics import aggregate
    from ltdistill.evaluate.runstore import RunStore
    from ltdistill.safe_io import json_bytes

    assert strict_json(json_bytes({"a": float("nan"), "b": [float("inf"), np.float32("nan"), np.float64(2.5)],
                                   "c": np.int64(3), "d": torch.tensor(float("-inf"))})) == \
        {"a": None, "b": [None, None, 2.5], "c": 3, "d": None}
    small_set(odd=float("nan"), history=[1.0, float("inf")]).save(tmp_path / "art")
    meta = strict_json((tmp_path / "art" / "meta.json").read_text())
    assert meta["odd"] is None and meta["history"] == [1.0, None]
    # a class without test images scores NaN: kept as null, and read back into the same aggregate
    metrics = {"balanced_acc": 0.5, "per_class_acc": [0.5, float("nan")], "class_acc_std": 0.0, "many": 0.5,
               "medium": None, "few": float("nan"), "lt_test": {"acc": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5}}
    store = RunStore(tmp_path / "runs", "key")
    store.put(0, metrics, 1.0)
    strict_json(store.path(0).read_text())
    read_back = store.get(0)["metrics"]
    assert read_back["per_class_acc"] == [0.5, None]
    assert np.isnan(aggregate([read_back])["per_class_acc"][1])


# -- 4. a distillation that skipped too many iterations ends as diverged --------------------------------------


@dataclass(frozen=True)
class _Config:
    iterations: int = 40
    checkpoint_every: int = 5
    lr_img: float = 1000.0
    max_start_epoch: int = 20


class _Method:
    name = "mtt"
    config = _Config()


def _run(tmp_path, nonfinite_at, iterations=40, threshold_at=()):
    from ltdistill.engine.loop import Learnable, SynthesisState, run_synthesis

    state = SynthesisState({"images": Learnable(torch.ones(2, 2), lr=0.1, momentum=0.0)},
                           torch.Generator().manual_seed(0))
    def step(it):
        if it in threshold_at:
            return None  # DATM's deliberate skip: never counts against the run
        if it in nonfinite_at:
            return float("nan")
        state["images"].sum().backward()
        return 1.0

    method = _Method()
    method.config = _Config(iterations=iterations)
    return run_synthesis(method, state, step, settings={}, workdir=tmp_path, progress=False)


def test_a_run_that_skipped_too_many_iterations_ends_as_diverged_and_keeps_its_checkpoint(tmp_path):
    from ltdistill.engine.loop import MAX_SKIPPED_SHARE, checkpoint_iteration

    assert MAX_SKIPPED_SHARE == 0.2
    with pytest.raises(Diverged) as caught:
        _run(tmp_path, nonfinite_at=range(0, 40, 3))  # 14 of 40 non-finite: 35%
    message = str(caught.value)
    assert "skipped" in message and "lr_img" in message and "max_start_epoch" in message and "--restart" in message
    stopped = checkpoint_iteration(tmp_path)  # the run stopped once 20% of 40 could no longer hold, and kept it
    assert stopped is not None and stopped < 40
    with pytest.raises(Diverged):  # the same command again resumes there and says the same, running nothing
        _run(tmp_path, nonfinite_at=range(0, 40, 3))
    assert checkpoint_iteration(tmp_path) == stopped


def test_a_run_within_the_skip_budget_finishes_and_records_its_skips(tmp_path):
    meta = _run(tmp_path / "a", nonfinite_at={3, 17}, threshold_at=set(range(20, 40)))  # 5% non-finite
    assert meta["skipped_nonfinite"] == 2 and meta["skipped_threshold"] == 20 and meta["rolled_back"] == 0


def test_every_optimized_artifact_records_its_skipped_iterations(blob_data, tmp_path):
    from ltdistill import methods

    s = methods.create("dm", iterations=2, width=8, depth=2).distill(blob_data, 1, seed=0, progress=False)
    s.save(tmp_path / "dm")
    meta = json.loads((tmp_path / "dm" / "meta.json").read_text())
    assert {"skipped_nonfinite", "skipped_threshold", "rolled_back"} <= set(meta)


def test_a_method_whose_updates_blow_up_ends_as_diverged(blob_data, tmp_path):
    from ltdistill import methods

    dm = methods.create("dm", iterations=10, width=8, depth=2, lr_img=1e38)
    with pytest.raises(Diverged, match="lr_img"):
        dm.distill(blob_data, 1, seed=0, progress=False, workdir=tmp_path)
    assert (tmp_path / ".checkpoint" / "state.safetensors").is_file()


# -- 5. a full disk never loses an evaluation's metrics ---------------------------------------------------------


def full_disk(monkeypatch, where):
    """os.write and os.fsync fail with ENOSPC on every file whose path `where` accepts (other files work)."""
    def failing(real):
        def call(fd, *args):
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = ""
            if where(path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, *args)
        return call

    monkeypatch.setattr(os, "write", failing(os.write))
    monkeypatch.setattr(os, "fsync", failing(os.fsync))


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
EVALUATE_FULL = ["evaluate", "--full", "--dataset", "digits", "--imbalance", "10", "--epochs", "1", "--runs", "1",
                 "--no-progress"]


@needs_proc
def test_evaluate_on_a_full_disk_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import ltdistill.evaluate

    out = tmp_path / "results"
    out.mkdir()
    full_disk(monkeypatch, lambda path: path.startswith(str(out)))
    monkeypatch.setattr(ltdistill.evaluate, "evaluate_full", lambda *a, **k: pytest.fail("evaluated"))
    code, _, err = run(capsys, *EVALUATE_FULL, "--json", str(out / "r.json"))
    assert code == 2 and "No space left on device" in one_line(err)
    assert not list(out.iterdir())


@needs_proc
def test_a_disk_that_fills_during_an_evaluation_loses_no_metrics_and_leaves_no_temp(tmp_path, capsys, monkeypatch):
    full_disk(monkeypatch, lambda path: "r.json" in path)  # the probe passes, the result's write fails
    code, out, err = run(capsys, *EVALUATE_FULL, "--json", str(tmp_path / "r.json"))
    assert code == 1 and "r.json" in one_line(err) and "No space left on device" in one_line(err)
    printed = strict_json(out[out.index("\n{") + 1:])  # after the summary: the metrics as the file would hold them
    assert 0 <= printed["balanced_acc"]["mean"] <= 1 and printed["training_set"] == "full-longtail"
    assert not list(tmp_path.iterdir())  # neither the result nor a temporary file


@needs_proc
def test_a_full_disk_leaves_no_stray_temporary_file_in_an_expert_buffer(tmp_path, monkeypatch):
    from ltdistill.experts.buffer import ExpertBuffer

    buffer = ExpertBuffer.create_or_open(tmp_path / "experts", {"dataset": "digits"})
    full_disk(monkeypatch, lambda path: "standard_000" in path)
    with pytest.raises((BadInput, OSError), match="No space left"):
        buffer.save("standard", 0, torch.zeros(3, 5))
    with pytest.raises((BadInput, OSError), match="No space left"):
        buffer.save_partial("standard", 0, {"trajectory": torch.zeros(3, 5)})
    leftovers = [p.name for p in (tmp_path / "experts").rglob("*") if p.is_file()]
    assert leftovers == ["index.json"]


@needs_proc
def test_a_full_disk_under_runs_dir_costs_resumability_not_the_evaluation(blob_data, tmp_path, monkeypatch, capsys):
    from ltdistill.evaluate import EvalConfig, evaluate_full

    runs = tmp_path / "runs"
    runs.mkdir()
    full_disk(monkeypatch, lambda path: path.startswith(str(runs)))
    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=2, epochs=2, batch_size=32)
    result = evaluate_full(blob_data, config, progress=False, runs_dir=runs)
    assert result["runs"] == 2 and 0 <= result["balanced_acc"]["mean"] <= 1
    assert capsys.readouterr().err.count("cannot keep") == 2 and not list(runs.iterdir())


def test_logs_locks_tables_and_figures_are_never_written_through_a_planted_link(tmp_path):
    """The last writes that opened a name themselves: bench logs and locks (appended), the report's index and figures
    and the bench table (atomic), all refuse a link planted at their name and leave its target as it was."""
    import matplotlib.pyplot as plt

    from ltdistill.safe_io import atomic_write_bytes, open_append, save_figure

    target = tmp_path / "target"
    target.write_text("untouched")
    for name, write in [("log.txt", lambda p: open_append(p).write("x")),
                        ("table.md", lambda p: atomic_write_bytes(p, b"x")),
                        ("bars.png", lambda p: save_figure(plt.figure(), p))]:
        link = tmp_path / name
        link.symlink_to(target)
        with pytest.raises(BadInput, match="link"):
            write(link)
        assert target.read_text() == "untouched" and link.is_symlink()
    with open_append(tmp_path / "fresh.log") as f:
        f.write("line\n")
    assert (tmp_path / "fresh.log").read_text() == "line\n"


@needs_proc
def test_a_disk_that_fills_during_a_distillation_is_one_line_and_the_last_checkpoint_resumes(tmp_path, capsys,
                                                                                          monkeypatch):
    out = tmp_path / "dm"
    argv = ["distill", "--method", "dm", "--dataset", "digits", "--imbalance", "10", "--ipc", "1", "--set",
            "iterations=4", "--set", "checkpoint_every=2", "--set", "width=4", "--out", str(out), "--no-progress"]
    from ltdistill.engine import loop

    real_save = loop.Checkpointer.save
    saves = []

    def second_save_fills_the_disk(self, state):
        saves.append(state.iteration)
        if len(saves) == 2:
            full_disk(monkeypatch, lambda path: ".checkpoint" in path)
        return real_save(self, state)

    monkeypatch.setattr(loop.Checkpointer, "save", second_save_fills_the_disk)
    code, _, err = run(capsys, *argv)
    assert code == 2 and "No space left on device" in one_line(err) and "iteration 4" in one_line(err)
    monkeypatch.undo()
    assert loop.checkpoint_iteration(out) == 2  # the checkpoint before the full disk
    assert [p.name for p in (out / ".checkpoint").iterdir()] == ["state.safetensors"]  # no stray temporary file
    code, _, _ = run(capsys, *argv)
    assert code == 0 and (out / "meta.json").exists()
