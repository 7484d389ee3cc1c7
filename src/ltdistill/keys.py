"""Cache keys: one hash of a run's settings names its checkpoint, its kept evaluation runs, a shared observer or
teacher and a bench cell's directory, so a file made with other settings is never taken for this one."""

from __future__ import annotations

import dataclasses
import hashlib
import json


def fingerprint(settings: dict) -> str:
    """16 hex digits of sha256 over the settings as sorted JSON (values JSON cannot hold go in as their str)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


# config fields added after records and checkpoints keyed by their config existed, with the default that means what
# such a record did: left out at that default, so the older records still match (buffers resume, checkpoints too)
LATER_FIELDS = {"dsa_siamese": "per_image", "cls_sampler": "draws"}


def keyed_config(config) -> dict:
    """A config dataclass as keys and records hold it: every field, less those of LATER_FIELDS at their default."""
    return {k: v for k, v in dataclasses.asdict(config).items() if LATER_FIELDS.get(k, object()) != v}
