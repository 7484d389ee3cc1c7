"""Image-folder sources: Tiny-ImageNet (train/<wnid>/images, val/val_annotations.txt) and ImageNet-LT (the split
lists ImageNet_LT_{train,val,test}.txt of Liu et al. 2019 over an ImageNet root). Images are decoded with Pillow
(a matplotlib dependency) and resized to a square resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ltdistill.data.raw import RawDataset, RawSplit
from ltdistill.errors import BadInput


def read_images(paths: list[Path], size: int, progress: bool = False) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc="decode images", disable=not progress, leave=False)):
        try:
            with Image.open(path) as opened:
                rgb = opened.convert("RGB")
                if rgb.size != (size, size):
                    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
                out[i] = np.asarray(rgb).transpose(2, 0, 1)
        except (OSError, UnidentifiedImageError) as e:
            raise BadInput(f"cannot decode image {path}: {e}") from None
    return out


def _first_dir_with(dirs: list[Path], rel: str, name: str) -> Path:
    for d in dirs:
        if (d / rel).exists():
            return d
    looked = ", ".join(str(d) for d in dirs) or "(no directory)"
    raise BadInput(f"{name}: {rel} not found; looked in {looked}")


def text_of(path: Path, dataset: str) -> str:
    """A dataset's list file as text; one BadInput line where it cannot be read or is not UTF-8."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{dataset}: {path} is not a readable text file ({e})") from None


def load_tiny_imagenet(dirs: list[Path], size: int = 64, progress: bool = False) -> RawDataset:
    candidates = [p for d in dirs for p in (d / "tiny-imagenet-200", d)]
    root = _first_dir_with(candidates, "wnids.txt", "tiny-imagenet")
    wnids = [w.strip() for w in text_of(root / "wnids.txt", "tiny-imagenet").split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels = [], []
    for w in wnids:
        files = sorted((root / "train" / w / "images").glob("*.[Jj][Pp][Ee][Gg]"))
        if not files:
            raise BadInput(f"tiny-imagenet: no images in {root / 'train' / w / 'images'}")
        train_paths += files
        train_labels += [index[w]] * len(files)
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise BadInput(f"tiny-imagenet: {annotations} not found")
    val_paths, val_labels = [], []
    for line in text_of(annotations, "tiny-imagenet").splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise BadInput(f"tiny-imagenet: bad line in {annotations}: {line!r}")
        val_paths.append(root / "val" / "images" / parts[0])
        val_labels.append(index[parts[1]])
    return RawDataset(
        "tiny-imagenet",
        RawSplit(read_images(train_paths, size, progress), np.array(train_labels)),
        RawSplit(read_images(val_paths, size, progress), np.array(val_labels)),
        wnids,
    )


def read_split_list(path: Path, root: Path) -> tuple[list[Path], np.ndarray]:
    """Parse an ImageNet-LT list: one 'relative/path.JPEG label' per line."""
    paths, labels = [], []
    for n, line in enumerate(text_of(path, "imagenet-lt").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise BadInput(f"imagenet-lt: {path}:{n} is not 'path label': {line!r}")
        paths.append(root / parts[0])
        labels.append(int(parts[1]))
    return paths, np.array(labels, dtype=np.int64)


def load_imagenet_lt(dirs: list[Path], size: int = 64, progress: bool = False) -> RawDataset:
    """Train = ImageNet_LT_train.txt (long-tailed by construction); test = ImageNet_LT_test.txt (balanced),
    falling back to ImageNet_LT_val.txt when the test list is absent."""
    root = _first_dir_with(dirs, "ImageNet_LT_train.txt", "imagenet-lt")
    train_paths, train_labels = read_split_list(root / "ImageNet_LT_train.txt", root)
    test_list = root / "ImageNet_LT_test.txt"
    if not test_list.is_file():
        test_list = root / "ImageNet_LT_val.txt"
    if not test_list.is_file():
        raise BadInput(f"imagenet-lt: neither ImageNet_LT_test.txt nor ImageNet_LT_val.txt in {root}")
    test_paths, test_labels = read_split_list(test_list, root)
    num_classes = int(max(train_labels.max(initial=-1), test_labels.max(initial=-1))) + 1
    return RawDataset(
        "imagenet-lt",
        RawSplit(read_images(train_paths, size, progress), train_labels),
        RawSplit(read_images(test_paths, size, progress), test_labels),
        [str(i) for i in range(num_classes)],
        native_longtail=True,
    )
