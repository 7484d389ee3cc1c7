"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021), the augmentation of every method here.

Parameters are sampled once (`DSA.sample`) and applied with `DSA.apply`; passing the same parameters to a real and
a synthetic batch is the "siamese" part (sample for the larger batch; a smaller one uses the first rows).
Every op is differentiable in the images (affine_grid/grid_sample, arithmetic, masks), so gradients reach
synthetic pixels. Magnitudes are the reference ParamDiffAug defaults (VICO-UoE/DatasetCondensation utils.py):
brightness 1.0, saturation 2.0, contrast 0.5, crop padding 0.125, cutout 0.5, flip 0.5, scale 1.2, rotate 15 deg.
Mode 'S' (the default of MTT/DATM/LTDD): one op group of the strategy, drawn per call, for the whole batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


def image_shape(x: torch.Tensor) -> tuple[int, int, int]:
    """(channels, height, width) of a batch."""
    _, c, h, w = x.shape
    return c, h, w


@dataclass(frozen=True)
class DSA:
    strategy: str = DEFAULT_STRATEGY
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    crop_pad: float = 0.125
    cutout: float = 0.5
    flip_prob: float = 0.5
    scale: float = 1.2
    rotate_deg: float = 15.0

    def __post_init__(self) -> None:
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown DSA ops {unknown}; known: {OPS}")

    @property
    def ops(self) -> list[str]:
        return [op for op in self.strategy.split("_") if op]

    def sample(self, n: int, shape: tuple[int, int, int], generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> dict:
        """Draw one op and its per-sample parameters for n images of shape (C, H, W)."""
        _, H, W = shape
        ops = self.ops
        op = ops[int(torch.randint(len(ops), (1,), generator=generator))]

        def rand(*size):
            return torch.rand(*size, generator=generator).to(device)

        p: dict = {"op": op}
        if op == "color":
            p["brightness"] = (rand(n, 1, 1, 1) - 0.5) * self.brightness
            p["saturation"] = rand(n, 1, 1, 1) * self.saturation
            p["contrast"] = rand(n, 1, 1, 1) + self.contrast
        elif op == "crop":
            sx, sy = int(H * self.crop_pad + 0.5), int(W * self.crop_pad + 0.5)
            p["shift_x"] = torch.randint(-sx, sx + 1, (n,), generator=generator).to(device)
            p["shift_y"] = torch.randint(-sy, sy + 1, (n,), generator=generator).to(device)
        elif op == "cutout":
            ch, cw = int(H * self.cutout + 0.5), int(W * self.cutout + 0.5)
            p["size"] = (ch, cw)
            p["cx"] = torch.randint(0, H + (1 - ch % 2), (n,), generator=generator).to(device)
            p["cy"] = torch.randint(0, W + (1 - cw % 2), (n,), generator=generator).to(device)
        elif op == "flip":
            p["mask"] = rand(n, 1, 1, 1) < self.flip_prob
        elif op == "scale":
            lo = 1.0 / self.scale
            sx, sy = rand(n) * (self.scale - lo) + lo, rand(n) * (self.scale - lo) + lo
            zero = torch.zeros_like(sx)
            p["theta"] = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
        elif op == "rotate":
            angle = (rand(n) - 0.5) * 2 * self.rotate_deg / 180 * math.pi
            cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
            p["theta"] = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
        return p

    @staticmethod
    def one_for_all(p: dict, n: int) -> dict:
        """A one-image draw `p` spread over n images: every image gets the same transform, as the official siamese
        DSA does (DatasetCondensation utils.py: with a seed, Siamese, theta[:] = theta[0] and the same for every
        op's parameters)."""
        return {k: v[:1].expand(n, *v.shape[1:]) if isinstance(v, torch.Tensor) else v for k, v in p.items()}

    def apply(self, x: torch.Tensor, p: dict) -> torch.Tensor:
        n = len(x)
        op = p["op"]
        if op == "color":
            x = x + p["brightness"][:n]
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * p["saturation"][:n] + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) * p["contrast"][:n] + mean
        if op == "crop":
            return _translate(x, p["shift_x"][:n], p["shift_y"][:n])
        if op == "cutout":
            return _cutout(x, p["cx"][:n], p["cy"][:n], p["size"])
        if op == "flip":
            return torch.where(p["mask"][:n], x.flip(3), x)
        theta = p["theta"][:n].to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, align_corners=True)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment one batch with fresh parameters (evaluation and expert training)."""
        return self.apply(x, self.sample(len(x), image_shape(x), generator, x.device))


def _translate(x: torch.Tensor, shift_x: torch.Tensor, shift_y: torch.Tensor) -> torch.Tensor:
    """Shift each image by integer pixels, filling with zeros (DSA's rand_crop)."""
    N, _, H, W = x.shape
    rows = torch.arange(H, device=x.device)[None, :] + shift_x[:, None] + 1  # index into the 1-padded image
    cols = torch.arange(W, device=x.device)[None, :] + shift_y[:, None] + 1
    rows, cols = rows.clamp(0, H + 1), cols.clamp(0, W + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    batch = torch.arange(N, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero a size[0] x size[1] square centred at (cx, cy) of each image (DSA's rand_cutout)."""
    _, _, H, W = x.shape
    rows = torch.arange(H, device=x.device)[None, :]
    cols = torch.arange(W, device=x.device)[None, :]
    top, left = cx[:, None] - size[0] // 2, cy[:, None] - size[1] // 2
    in_rows = (rows >= top) & (rows < top + size[0])
    in_cols = (cols >= left) & (cols < left + size[1])
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


def resized_crop_params(height: int, width: int, generator: torch.Generator, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) of torchvision's RandomResizedCrop.get_params: up to 10 draws of an area fraction in
    `scale` and a log-uniform aspect ratio in `ratio` until the box fits, else the center crop of the clamped
    ratio; drawn through `generator`."""
    area, log_ratio = height * width, (math.log(ratio[0]), math.log(ratio[1]))

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))

    for _ in range(10):
        target, aspect = area * uniform(*scale), math.exp(uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    if width / height < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif width / height > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop_flip(x: torch.Tensor, generator: torch.Generator, *, shared: bool = False,
                      scale: tuple[float, float] = (0.08, 1.0)) -> torch.Tensor:
    """RandomResizedCrop(size of x, scale) + RandomHorizontalFlip, differentiable in x (bilinear, antialiased
    resize back to the full size). shared: one box and one flip for the whole batch, as EDC's recovery applies the
    transform to the batch tensor; else each image its own draw, as a data loader does."""
    n, _, height, width = x.shape
    out = []
    for chunk in ([x] if shared else x.split(1)):
        top, left, h, w = resized_crop_params(height, width, generator, scale)
        crop = F.interpolate(chunk[:, :, top:top + h, left:left + w], size=(height, width), mode="bilinear",
                             align_corners=False, antialias=True)
        out.append(crop.flip(3) if float(torch.rand((), generator=generator)) < 0.5 else crop)
    return torch.cat(out) if len(out) > 1 else out[0]
