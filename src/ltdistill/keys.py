"""Cache keys: one hash of a run's settings names its checkpoint, its kept evaluation runs, a shared observer or
teacher and a bench cell's directory, so a file made with other settings is never taken for this one."""

from __future__ import annotations

import hashlib
import json


def fingerprint(settings: dict) -> str:
    """16 hex digits of sha256 over the settings as sorted JSON (values JSON cannot hold go in as their str)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
