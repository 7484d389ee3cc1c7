"""The two exceptions the CLI turns into one line on stderr: BadInput (exit code 2) and Diverged (exit code 1)."""


class BadInput(ValueError):
    """Input that the user can fix: an unknown name, a missing file, an out-of-range number."""


def check(condition: bool, message: str) -> None:
    """Raise BadInput(message) unless condition holds (validation at the boundary, scikit-learn style)."""
    if not condition:
        raise BadInput(message)


class Diverged(RuntimeError):
    """A run whose numbers became NaN/Inf where no step can be skipped (an expert's parameters, a result about to
    be written). Nothing non-finite is written; resumable state of the last good point is kept."""
