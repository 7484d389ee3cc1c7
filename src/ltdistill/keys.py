"""Cache keys: one hash of a run's settings names its checkpoint, its kept evaluation runs, a shared observer or
teacher and a bench cell's directory, so a file made with other settings is never taken for this one."""

from __future__ import annotations

import dataclasses
import hashlib
import json


def fingerprint(settings: dict) -> str:
    """16 hex digits of sha256 over the settings as sorted JSON (values JSON cannot hold go in as their str)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


# config fields added after records and checkpoints keyed by their config existed, with the value that means what
# such a record did: left out at that value, so the older records still match (buffers resume, checkpoints too)
LATER_FIELDS = {"dsa_siamese": "per_image", "cls_sampler": "draws", "net_momentum": 0.5, "gsam_rho": 0.0,
                "gsam_alpha": 0.3, "compile": False, "cosine_denominator": "clamped", "ema_decay": None,
                "decay_matrices_only": False, "jitter_range": "symmetric", "precision": "float32"}
# config fields that existed with another default before their default became the official code's, with that
# earlier default (records hold these fields, so only keys that leave defaults out need them: bench cells, buffers)
EARLIER_DEFAULTS = {"maxnorm": 0.1, "remedy_scaling": "weight_sum", "flip": True}


def changed_defaults(config_class) -> dict:
    """{field: default} for the fields of a config dataclass whose default is no longer what a key made before it
    meant (LATER_FIELDS, EARLIER_DEFAULTS): what a key that names only the non-default settings (a bench cell, a
    bench expert buffer) must add, so a cell or buffer made under the earlier defaults is never taken for one made
    under today's. {} when every default is still the earlier one (those keys stay as they were)."""
    earlier = {**LATER_FIELDS, **EARLIER_DEFAULTS}
    return {f.name: f.default for f in dataclasses.fields(config_class)
            if f.name in earlier and f.default != earlier[f.name]}


def keyed_config(config) -> dict:
    """A config dataclass as keys and records hold it: every field, less those of LATER_FIELDS at their default."""
    return {k: v for k, v in dataclasses.asdict(config).items() if LATER_FIELDS.get(k, object()) != v}
