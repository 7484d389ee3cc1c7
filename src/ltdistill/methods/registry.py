"""Method registry: `methods.create("random", **config)`; a new method is one file plus one line here."""

from __future__ import annotations

from ltdistill.errors import BadInput
from ltdistill.methods.base import Method
from ltdistill.methods.datm import DATM
from ltdistill.methods.dc import DC
from ltdistill.methods.dm import DM
from ltdistill.methods.herding import Herding
from ltdistill.methods.ltdd import LTDD
from ltdistill.methods.mtt import MTT
from ltdistill.methods.random import RandomSelection
from ltdistill.methods.sre2l import SRe2L
from ltdistill.methods.unilevel import Unilevel

METHODS: dict[str, type[Method]] = {
    m.name: m for m in [RandomSelection, Herding, DC, DM, MTT, DATM, LTDD, SRe2L, Unilevel]}


def create(name: str, **config) -> Method:
    if name not in METHODS:
        raise BadInput(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name](**config)


def names() -> list[str]:
    return sorted(METHODS)
