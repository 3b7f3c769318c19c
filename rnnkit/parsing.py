"""Numbers read from text, one way wherever the text comes from: a URL, a form field, the
command line or an environment variable.

A number is ASCII: an optional sign, digits with an optional fraction, an optional exponent
("3", "-0.5", "1e-3"). Other scripts' digits ("３", "٣"), underscores, spaces inside, "nan"
and "inf" are not numbers here, although Python's `int()` and `float()` take some of them:
text a visitor typed is read as a person reads it, or refused. `-0` is 0.
"""

from __future__ import annotations

import math
import re
from typing import Literal

NumberKind = Literal["int", "float"]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def parse_number(text: str, kind: NumberKind = "float") -> int | float:
    """Read one number from text.

    Args:
        text: the text; spaces around it are ignored.
        kind: "int" (a whole number: "3", "3.0" and "3e2" are whole) or "float".

    Returns:
        The number, finite; an int for kind "int". Negative zero is returned as 0.

    Raises:
        ValueError: the text is not a number as the module doc says, is not finite or too
            large to hold (1e400), or is not whole for kind "int". The message quotes the text.
    """
    if not isinstance(text, str):
        raise ValueError(f"a number must be given as text, not {type(text).__name__}")
    cleaned = text.strip()
    if not _NUMBER.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a number")
    value = float(cleaned)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is too large")
    if kind == "float":
        return value + 0.0  # -0.0 + 0.0 is 0.0
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    # Exact for whole numbers of up to 15 digits; longer ones are read digit by digit.
    if re.fullmatch(r"[+-]?\d+", cleaned, re.ASCII):
        return int(cleaned)
    return int(value)


def clamp_number(
    text: str, low: float, high: float, kind: NumberKind = "int"
) -> tuple[int | float | None, str | None]:
    """A number from a URL, clamped into [low, high], or None where there is none to use.

    Infinities and numbers too large to hold are clamped to the nearer end, like any number
    out of range; text that is no number (NaN included) is ignored.

    Args:
        text: the URL parameter's value.
        low, high: the range the page accepts, both ends included.
        kind: "int" (a fraction is rounded) or "float".

    Returns:
        (value, note): the value to use, or None to keep the page's default; the note says
        what was changed, for the page to show, or is None when the text was used as is.
    """
    cleaned = text.strip() if isinstance(text, str) else ""
    try:
        value: float = parse_number(cleaned, "float")
    except ValueError:
        lowered = cleaned.lower().lstrip("+")
        if lowered in ("inf", "infinity") or (_NUMBER.fullmatch(cleaned) and "-" not in cleaned):
            value = math.inf  # "inf", or digits too many to hold: the top
        elif lowered in ("-inf", "-infinity") or _NUMBER.fullmatch(cleaned):
            value = -math.inf
        else:
            return None, "is not a number: it is ignored"
    clamped = min(max(value, low), high)
    result = round(clamped) if kind == "int" else float(clamped)
    if clamped != value:
        return result, f"is out of range ({low:g} to {high:g}): {result:g} is used"
    if result != value:
        return result, f"is not a whole number: {result:g} is used"
    return result, None
