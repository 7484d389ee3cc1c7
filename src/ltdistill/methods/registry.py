"""Method registry: `methods.create("random", **config)`; a new method is one file plus one line here, or, outside
this package, a Method subclass named by an entry point of the group "ltdistill.methods" in its distribution's
metadata (pyproject: [project.entry-points."ltdistill.methods"] name = "package.module:Class"): loaded at import,
it is then a method like the built-in ones, for `ltdistill distill --method` and bench suites alike."""

from __future__ import annotations

from importlib.metadata import entry_points

from ltdistill.engine.method import Method
from ltdistill.errors import BadInput
from ltdistill.methods.datm import DATM
from ltdistill.methods.dc import DC
from ltdistill.methods.dm import DM
from ltdistill.methods.edc import EDC
from ltdistill.methods.herding import Herding
from ltdistill.methods.ltdd import LTDD
from ltdistill.methods.mtt import MTT
from ltdistill.methods.random import RandomSelection
from ltdistill.methods.sre2l import SRe2L
from ltdistill.methods.unilevel import Unilevel

METHODS: dict[str, type[Method]] = {
    m.name: m for m in [RandomSelection, Herding, DC, DM, MTT, DATM, LTDD, SRe2L, Unilevel, EDC]}


ENTRY_POINT_GROUP = "ltdistill.methods"


def load_entry_points() -> list[str]:
    """Register the methods other distributions declare (ENTRY_POINT_GROUP); a built-in name is not replaced.
    Returns the names added."""
    added = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise BadInput(f"entry point {point.name} = {point.value} of group {ENTRY_POINT_GROUP} is not a Method "
                           "subclass")
        if cls.name not in METHODS:
            METHODS[cls.name] = cls
            added.append(cls.name)
    return added


load_entry_points()


def create(name: str, **config) -> Method:
    if name not in METHODS:
        raise BadInput(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name](**config)


def names() -> list[str]:
    return sorted(METHODS)


def soft_label_methods() -> list[str]:
    """The methods whose sets carry soft labels or a relabeling teacher by default (Method.labels): those ADSA
    calibrates."""
    return sorted(name for name, cls in METHODS.items() if cls.labels == "soft")
