from __future__ import annotations

import pytest

from budget_state.budgets._units import TokenValueError, describe_value, humanize, parse_tokens

VALID = [
    (50000, 50000, "int"),
    (50000.0, 50000, "integral-float"),
    ("50000", 50000, "digits"),
    ("50_000", 50000, "underscores"),
    ("50,000", 50000, "commas"),
    ("1,234,567", 1234567, "comma-groups"),
    ("50k", 50000, "k"),
    ("50K", 50000, "K"),
    ("1.5M", 1500000, "M-decimal"),
    ("1.5m", 1500000, "m-decimal"),
    ("2.5k", 2500, "k-decimal"),
    ("2B", 2000000000, "B"),
    ("1.1M", 1100000, "no-float-error"),
    ("  7 \n", 7, "whitespace"),
    ("1.5 M", 1500000, "space-before-suffix"),
    ("+5", 5, "plus-sign"),
    ("1", 1, "one"),
    (2**63 - 1, 2**63 - 1, "largest-int"),
    ("9223372036854775807", 2**63 - 1, "largest-text"),
    ("9223372036.854775807B", 2**63 - 1, "largest-B"),
]


@pytest.mark.parametrize(("value", "expected"), [v[:2] for v in VALID], ids=[v[2] for v in VALID])
def test_parse_tokens_valid(value: object, expected: int) -> None:
    assert parse_tokens(value) == expected


INVALID = [
    ("fifty", '"fifty" is not a number', "word"),
    (0, "0 is not a positive number of tokens", "zero"),
    (-5, "-5 is not a positive number of tokens", "negative"),
    ("-5", '"-5" is not a positive number of tokens', "negative-string"),
    ("0k", '"0k" is not a positive number of tokens', "zero-k"),
    (1.5, "1.5 is not a whole number of tokens", "fractional-float"),
    ("1.2345k", '"1.2345k" is not a whole number of tokens', "fractional-k"),
    (float("nan"), "nan is not a number", "nan"),
    (float("inf"), "inf is not a number", "inf"),
    (float("-inf"), "-inf is not a number", "minus-inf"),
    (True, "true is not a number", "bool"),
    (None, "value is empty", "none"),
    ("", "value is empty", "empty"),
    ("   ", "value is empty", "blank"),
    ([50000], "[50000] is not a number", "list"),
    ({"a": 1}, "{'a': 1} is not a number", "dict"),
    ("1,5k", '"1,5k" is not a number', "european-comma"),
    ("5,0000", '"5,0000" is not a number', "bad-comma-group"),
    ("50__000", '"50__000" is not a number', "double-underscore"),
    ("_50", '"_50" is not a number', "leading-underscore"),
    ("5e4", '"5e4" is not a number', "exponent"),
    ("50kk", '"50kk" is not a number', "double-suffix"),
    ("50 000", '"50 000" is not a number', "inner-space"),
    ("٥٠", '"٥٠" is not a number', "non-ascii-digits"),
    ("1\x00", "'1\\x00' is not a number", "nul"),
    ("9" * 65, '"' + "9" * 36 + "... is not a number", "too-long"),
    ("999999999999B", '"999999999999B" is too large — the largest is 9223372036854775807', "huge-B"),
    ("9223372036854775808", '"9223372036854775808" is too large — the largest is 9223372036854775807', "2**63"),
    (2**63, "9223372036854775808 is too large — the largest is 9223372036854775807", "2**63-int"),
    (1e30, "1e+30 is too large — the largest is 9223372036854775807", "huge-float"),
]


@pytest.mark.parametrize(("value", "message"), [v[:2] for v in INVALID], ids=[v[2] for v in INVALID])
def test_parse_tokens_invalid(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_tokens(value)
    assert str(info.value) == message


def test_parse_tokens_what_names_an_empty_value() -> None:
    with pytest.raises(TokenValueError) as info:
        parse_tokens(None, what="tokenBudget")
    assert (str(info.value), info.value.shown, info.value.reason) == ("tokenBudget is empty", "", "is empty")


def test_token_value_error_parts_let_callers_add_the_place() -> None:
    with pytest.raises(TokenValueError) as info:
        parse_tokens("fifty")
    assert (info.value.shown, info.value.reason) == ('"fifty"', "is not a number")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x", '"x"'),
        ("a\nb", "'a\\nb'"),
        (3, "3"),
        (2.5, "2.5"),
        (False, "false"),
        (None, ""),
        ("y" * 50, '"' + "y" * 36 + "..."),
    ],
    ids=["str", "control-char", "int", "float", "bool", "none", "long"],
)
def test_describe_value(value: object, shown: str) -> None:
    assert describe_value(value) == shown


HUMANIZE = [
    (0, "0"),
    (950, "950"),
    (999, "999"),
    (1000, "1.0K"),
    (8000, "8.0K"),
    (9949, "9.9K"),
    (9950, "10K"),
    (10000, "10K"),
    (12345, "12.3K"),
    (12350, "12.4K"),
    (99949, "99.9K"),
    (99950, "100K"),
    (123456, "123K"),
    (999499, "999K"),
    (999500, "1.0M"),
    (1500000, "1.5M"),
    (10000000, "10M"),
    (999950000, "1.0B"),
    (2500000000, "2.5B"),
    (1234000000000, "1234B"),
    (-12345, "-12.3K"),
    (-5, "-5"),
]


@pytest.mark.parametrize(("n", "text"), HUMANIZE, ids=[str(n) for n, _ in HUMANIZE])
def test_humanize(n: int, text: str) -> None:
    assert humanize(n) == text


def test_humanize_never_shows_1000_of_a_unit() -> None:
    for n in range(995_000, 1_005_000, 7):
        assert not humanize(n).startswith("1000"), n


def test_a_too_large_value_says_the_largest_as_the_fix() -> None:
    with pytest.raises(TokenValueError) as info:
        parse_tokens("999999999999B")
    assert (info.value.shown, info.value.reason, info.value.fix) == (
        '"999999999999B"',
        "is too large",
        "the largest is 9223372036854775807",
    )
