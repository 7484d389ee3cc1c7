"""scikit-learn's bundled 8x8 digits: the embedded default, no download.

Decision: the 8x8 images (values 0..16) are upsampled x2 bilinearly to 16x16 so that the design's CPU-scale nets
(ConvNet depth 2-3 with 2x2 pooling) have room to pool; values are rescaled to 0..255 uint8 like every other
source. There is no official split, so a fixed stratified split (seed 0, 1/3 of each class) is the test set;
about 120 images per class remain for training.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ltdistill.data.raw import RawDataset, RawSplit

SIZE = 16
TEST_FRACTION = 1 / 3


def load_digits_dataset() -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    upsampled = F.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    images = (upsampled.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    labels = bunch.target.astype(np.int64)

    rng = np.random.default_rng(0)
    test_mask = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        test_mask[rng.choice(idx, size=int(round(len(idx) * TEST_FRACTION)), replace=False)] = True
    return RawDataset(
        name="digits",
        train=RawSplit(images[~test_mask], labels[~test_mask]),
        test=RawSplit(images[test_mask], labels[test_mask]),
        class_names=[str(c) for c in range(10)],
    )
