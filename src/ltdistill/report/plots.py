"""PNG figures: the synthetic images as a grid per class (like the LTDD supplement's Figure 8), per-class accuracy
bars, and the distillation loss curve. matplotlib with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ltdistill.safe_io import save_figure  # noqa: E402
from ltdistill.synthetic import SyntheticSet  # noqa: E402


def displayable(images: torch.Tensor, meta: dict) -> np.ndarray:
    """Undo the dataset normalization; ZCA-whitened images are min-max scaled per image instead."""
    x = images.float()
    if meta.get("zca_eps") is None and "mean" in meta:
        mean = torch.tensor(meta["mean"])[None, :, None, None]
        std = torch.tensor(meta["std"])[None, :, None, None]
        x = (x * std + mean).clamp(0, 1)
    else:
        lo = x.flatten(1).min(1).values[:, None, None, None]
        hi = x.flatten(1).max(1).values[:, None, None, None]
        x = (x - lo) / (hi - lo).clamp_min(1e-8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(synthetic: SyntheticSet, path: Path, per_class: int = 10, class_names=None) -> Path:
    """The first `per_class` images of each class, a row per class named on the left, tiled into one picture on
    white (one axes: a hundred small ones take matplotlib seconds per set)."""
    classes = synthetic.hard_labels
    num_classes = int(classes.max()) + 1
    images = displayable(synthetic.images, synthetic.meta)
    height, pad = images.shape[1], tile_pad(images.shape[1])
    canvas = tiled(images, classes, per_class)
    fig, ax = plt.subplots(figsize=(per_class * 0.9, num_classes * 0.9))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([pad + c * (height + pad) + height / 2 for c in range(num_classes)],
                  [class_names[c] if class_names else str(c) for c in range(num_classes)], fontsize=7)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.tick_params(length=0)
    meta = synthetic.meta
    beta = meta.get("imbalance_factor")
    beta = f"{beta:g}" if isinstance(beta, (int, float)) else beta  # 50, not 50.0
    ax.set_title(f"{meta.get('method')} - {meta.get('dataset')} beta {beta} IPC {meta.get('ipc')}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def tile_pad(height: int) -> int:
    return max(1, height // 14)


def tiled(images: np.ndarray, classes: torch.Tensor, per_class: int) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] as one RGB picture: row c holds the first `per_class` images of class c, a
    white border around each."""
    num_classes = int(classes.max()) + 1
    height, width, channels = images.shape[1:]
    pad = tile_pad(height)
    canvas = np.ones((num_classes * (height + pad) + pad, per_class * (width + pad) + pad, 3))
    for c in range(num_classes):
        for j, i in enumerate(torch.nonzero(classes == c).flatten()[:per_class].tolist()):
            top, left = pad + c * (height + pad), pad + j * (width + pad)
            canvas[top:top + height, left:left + width] = images[i] if channels == 3 else images[i][..., :1]
    return canvas


def per_class_bars(results: dict[str, dict], path: Path, class_names=None) -> Path:
    """Grouped bars: per-class balanced-test accuracy of each result (label -> evaluation JSON); every class is named
    with its training count (the long-tailed set's), so head and tail can be read off the axis."""
    labels = list(results)
    first = next(iter(results.values()))
    num_classes = len(first["per_class_acc"])
    counts = first.get("train_counts")
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(max(6, num_classes * 0.7), 3.2))
    colors = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")  # the default cycle repeats after 10 colors
    for k, label in enumerate(labels):
        acc = 100 * np.asarray(results[label]["per_class_acc"], dtype=float)
        ax.bar(np.arange(num_classes) + k * width - 0.4 + width / 2, acc, width, label=label,
               color=colors(k % colors.N))
    ax.set_xticks(np.arange(num_classes))
    names = class_names or [str(c) for c in range(num_classes)]
    if counts and len(counts) == num_classes:
        names = [f"{name} (n={n})" for name, n in zip(names, counts, strict=True)]
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("class (n: training images)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def loss_curve(synthetic: SyntheticSet, path: Path) -> Path | None:
    history = [v for v in synthetic.meta.get("loss_history", []) if v is not None]
    if not history:
        return None
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(history, lw=0.6, alpha=0.4, label="per iteration")
    window = max(1, len(history) // 20)  # a moving average over a twentieth of the run shows the trend
    if window > 1:
        smooth = np.convolve(history, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(history)), smooth, lw=1.2, label=f"mean of {window}")
        ax.legend(fontsize=7)
    ax.set_xlabel("iteration")
    ax.set_ylabel("matching loss")
    ax.set_title(f"{synthetic.meta.get('method')} IPC {synthetic.meta.get('ipc')}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def tsne_panels(panels: dict[str, tuple[np.ndarray, np.ndarray]], class_names: list[str], groups: dict[str, list],
                path: Path, seed: int = 0) -> Path:
    """The two-stage paper's Figure 1: per panel, t-SNE (perplexity 50, scikit-learn) of final-layer features of
    the balanced test images under a model trained on one training set, coloured by class; the title gives the
    grouping found on that training set."""
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5), squeeze=False)
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for ax, (title, (features, labels)) in zip(axes[0], panels.items(), strict=True):
        points = TSNE(n_components=2, perplexity=min(50.0, len(features) - 1), random_state=seed,
                      init="pca").fit_transform(features)
        for c, name in enumerate(class_names):
            m = labels == c
            ax.scatter(points[m, 0], points[m, 1], s=4, color=cmap(c % cmap.N), label=name)
        g = groups.get(title)
        ax.set_title(f"{title}\ngroups {g[0]} | {g[1]}" if g else title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
