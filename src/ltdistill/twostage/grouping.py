"""Class grouping from per-class k-means centroids (two-stage paper, Sec. 3.3, Eq. 1-3).

Features: the final-layer embedding (`embed`) of a ConvNet trained on the data being grouped. For each class i,
k-means (scikit-learn, n_init 10) gives M centroids c_i1..c_iM (M capped by the class's image count). Class
distance D_ik = sqrt(sum_j sum_l ||c_ij - c_kl||^2) (Eq. 2). The split into G1, G2 maximizes
sum_{i in G1, k in G2} D_ik (Eq. 3): exact search over all 2^(C-1) - 1 bipartitions when C <= 16 (CIFAR-10,
Fashion-MNIST); beyond that a heuristic, stated in the result: the best of single-class-move hill climbing
(flip the class that most increases the cut until none does) from 32 random starts plus the spectral start
(sign of the Laplacian's Fiedler vector), a standard max-cut local search with no optimality guarantee.
The paper's split has no size constraint; neither has ours (a lone outlying class may form a group).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from sklearn.cluster import KMeans

EXACT_MAX_CLASSES = 16


def class_centroids(features: np.ndarray, labels: np.ndarray, num_classes: int, clusters: int = 5,
                    seed: int = 0) -> list[np.ndarray]:
    out = []
    for c in range(num_classes):
        x = features[labels == c]
        k = max(1, min(clusters, len(x)))
        out.append(KMeans(n_clusters=k, n_init=10, random_state=seed).fit(x).cluster_centers_)
    return out


def class_distances(centroids: list[np.ndarray]) -> np.ndarray:
    n = len(centroids)
    d = np.zeros((n, n))
    for i in range(n):
        for k in range(n):
            diff = centroids[i][:, None, :] - centroids[k][None, :, :]
            d[i, k] = np.sqrt((diff**2).sum())
    return d


def cut_value(d: np.ndarray, in_first: np.ndarray) -> float:
    return float(d[np.ix_(in_first, ~in_first)].sum())


def best_split(d: np.ndarray, seed: int = 0) -> tuple[list[int], list[int], str]:
    """(G1, G2, how): G1 holds class 0; `how` is 'exact' or 'heuristic'."""
    n = len(d)
    if n < 2:
        raise ValueError("grouping needs at least two classes")
    if n <= EXACT_MAX_CLASSES:
        best, best_mask = -1.0, np.ones(n, dtype=bool)  # every split beats it (value > -1)
        for bits in itertools.product([True, False], repeat=n - 1):
            mask = np.array((True, *bits))
            if mask.all():
                continue
            value = cut_value(d, mask)
            if value > best:
                best, best_mask = value, mask
        how = "exact"
    else:
        rng = np.random.default_rng(seed)
        laplacian = np.diag(d.sum(1)) - d
        fiedler = np.linalg.eigh(laplacian)[1][:, 1]
        starts = [fiedler > np.median(fiedler)] + [rng.random(n) < 0.5 for _ in range(32)]
        best, best_mask = -1.0, starts[0]
        for mask in starts:
            mask = mask.copy()
            improved = True
            while improved:
                improved = False
                current = cut_value(d, mask)
                for i in range(n):
                    mask[i] = ~mask[i]
                    if 0 < mask.sum() < n and cut_value(d, mask) > current + 1e-12:
                        improved = True
                        break
                    mask[i] = ~mask[i]
            value = cut_value(d, mask)
            if value > best:
                best, best_mask = value, mask.copy()
        if not best_mask[0]:
            best_mask = ~best_mask
        how = "heuristic"
    first = [i for i in range(n) if best_mask[i]]
    return first, [i for i in range(n) if not best_mask[i]], how


def find_groups(model, images: torch.Tensor, labels: torch.Tensor, num_classes: int, clusters: int = 5,
                seed: int = 0) -> dict:
    """Group the classes of (images, labels) by the features of a trained model."""
    from ltdistill.train import embed

    features = embed(model, images).numpy()
    centroids = class_centroids(features, labels.numpy(), num_classes, clusters, seed)
    d = class_distances(centroids)
    g1, g2, how = best_split(d, seed)
    return {"groups": [g1, g2], "search": how, "clusters": clusters, "distances": d.round(4).tolist()}
