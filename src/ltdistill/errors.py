"""The one exception for bad input: the CLI turns it into one line on stderr and exit code 2."""


class BadInput(ValueError):
    """Input that the user can fix: an unknown name, a missing file, an out-of-range number."""


def check(condition: bool, message: str) -> None:
    """Raise BadInput(message) unless condition holds (validation at the boundary, scikit-learn style)."""
    if not condition:
        raise BadInput(message)
