"""The one way a value is refused: ``name=value is not accepted; accepted: …``.

Every entry point — a run's config, the model and trainers (the library's own entry points),
the runner's options, the command line — checks its inputs with these few functions, so a
rule such as "a learning rate is a finite number > 0" is written once and every refusal
reads the same, naming the field and the accepted values before any compute starts.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Iterable


def reject(name: str, value, accepted: str) -> ValueError:
    """The error to raise: one line naming the field, the value given and what is accepted."""
    return ValueError(f"{name}={value!r} is not accepted; accepted: {accepted}")


def check_choice(name: str, value, accepted: Iterable):
    accepted = list(accepted)
    if value not in accepted:
        raise reject(name, value, ", ".join(map(str, accepted)))
    return value


def _is_number(value, kind) -> bool:
    # bool is an int to Python, but True as a learning rate or an epoch count is a typo
    return isinstance(value, kind) and not isinstance(value, bool)


def check_positive(name: str, value, integer: bool = False, allow_none: bool = False):
    """A finite number > 0 (``integer``: a positive integer); ``allow_none``: None means "all"."""
    if value is None and allow_none:
        return None
    kind = Integral if integer else Real
    if not _is_number(value, kind) or not value > 0 or value != value or value == float("inf"):
        what = "a positive integer" if integer else "a finite number > 0"
        raise reject(name, value, what + (" or None (the full set)" if allow_none else ""))
    return value


def check_count(name: str, value, minimum: int, meaning: str = ""):
    """An integer ≥ ``minimum`` (seeds ≥ 0, workers ≥ 1, …); ``meaning`` explains the values."""
    if not _is_number(value, Integral) or value < minimum:
        raise reject(name, value, f"an integer ≥ {minimum}" + (f" ({meaning})" if meaning else ""))
    return value
