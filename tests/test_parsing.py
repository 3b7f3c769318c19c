"""rnnkit.parsing: numbers read from text one way, and clamped for a URL."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit.parsing import clamp_number, parse_number
from tests.helpers import URL_NUMBERS


@pytest.mark.parametrize(
    ("text", "kind", "number"),
    [
        ("3", "int", 3),
        ("3.0", "int", 3),
        ("3e2", "int", 300),
        (" -0.5 ", "float", -0.5),
        ("-0", "float", 0.0),
        ("12345678901234567890", "int", 12345678901234567890),
    ],
)
def test_numbers_are_read(text, kind, number):
    value = parse_number(text, kind)
    assert value == number
    assert isinstance(value, int if kind == "int" else float)
    assert math.copysign(1, value) == math.copysign(1, number) or number == 0


@pytest.mark.parametrize("text", ["nan", "inf", "1e400", "３", "1_000", "0x10", "", "3.5"])
def test_what_is_not_a_whole_finite_ascii_number_is_refused(text):
    with pytest.raises(ValueError, match=r"not a number|too large|not a whole number"):
        parse_number(text, "int")


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("5", (5, None)),
        ("inf", (10, "is out of range (0 to 10): 10 is used")),
        ("-Infinity", (0, "is out of range (0 to 10): 0 is used")),
        ("1e400", (10, "is out of range (0 to 10): 10 is used")),
        ("-99999999999999999999999", (0, "is out of range (0 to 10): 0 is used")),
        ("nan", (None, "is not a number: it is ignored")),
        ("７", (None, "is not a number: it is ignored")),
        ("2.5", (2, "is not a whole number: 2 is used")),
    ],
)
def test_a_url_number_is_clamped_or_ignored(text, result):
    assert clamp_number(text, 0, 10, "int") == result


@given(URL_NUMBERS, st.sampled_from(["int", "float"]))
def test_any_url_text_gives_a_number_in_range_or_none(text, kind):
    value, note = clamp_number(text, -3, 250, kind)
    if value is None:
        assert note == "is not a number: it is ignored"
        return
    assert -3 <= value <= 250
    assert isinstance(value, int if kind == "int" else float)
    assert math.isfinite(value)
    if note is None:
        assert value == parse_number(text, kind)  # used as it is
