"""Named scale protocols: every table says which one produced it (design.md "CPU scale").

- paper: ConvNet width 128, depth 3 (depth 4 for 64x64 images), evaluation 1000 epochs (MTT/DATM/LTDD).
- cpu:   the documented scale-down for 2 CPU cores: ConvNet width 32, depth 3 (depth 2 for images of 16 pixels
         or less, e.g. digits), evaluation 300 epochs. Budgets of the methods are scaled in their presets.
"""

from __future__ import annotations

from ltdistill.errors import BadInput

PROTOCOLS = ("cpu", "paper")


def network(protocol: str, im_size: tuple[int, int]) -> dict:
    """ConvNet options of a protocol for an image size."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    side = min(im_size)
    if protocol == "paper":
        return {"width": 128, "depth": 4 if side >= 64 else 3}
    return {"width": 32, "depth": 2 if side <= 16 else (4 if side >= 64 else 3)}


def eval_epochs(protocol: str) -> int:
    return 1000 if protocol == "paper" else 300
