"""ZCA whitening fitted on the training set, as the trajectory-matching methods use it.

Matches kornia's ZCAWhitening(eps=0.1) used by MTT/DATM/LTDD: W = U diag(1/sqrt(S + eps)) U^T of the
covariance of the flattened, mean-centred train images; x -> (x - mean) W.
"""

from __future__ import annotations

import torch


class ZCA:
    def __init__(self, eps: float = 0.1):
        self.eps = eps
        self.mean: torch.Tensor | None = None
        self.matrix: torch.Tensor | None = None
        self.inverse_matrix: torch.Tensor | None = None

    def fit(self, x: torch.Tensor) -> ZCA:
        flat = x.reshape(len(x), -1).double()
        self.mean = flat.mean(0)
        centred = flat - self.mean
        cov = centred.T @ centred / max(len(flat) - 1, 1)
        eigvals, eigvecs = torch.linalg.eigh(cov)
        eigvals = eigvals.clamp_min(0)
        self.matrix = (eigvecs * (eigvals + self.eps).rsqrt()) @ eigvecs.T
        self.inverse_matrix = (eigvecs * (eigvals + self.eps).sqrt()) @ eigvecs.T
        return self

    def fitted(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.mean is None or self.matrix is None or self.inverse_matrix is None:
            raise RuntimeError("ZCA used before fit()")
        return self.mean, self.matrix, self.inverse_matrix

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean, matrix, _ = self.fitted()
        flat = x.reshape(len(x), -1).double()
        return ((flat - mean) @ matrix).float().reshape(x.shape)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        mean, _, inverse_matrix = self.fitted()
        flat = x.reshape(len(x), -1).double()
        return (flat @ inverse_matrix + mean).float().reshape(x.shape)
