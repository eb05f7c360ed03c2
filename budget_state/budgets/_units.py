"""Token amounts: reading what people write ("50k", "1.5M", "50_000") and printing them short."""

from __future__ import annotations

import re

from budget_state._model import MAX_COUNT

_MULTIPLIERS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}
# Underscores as Python allows them; commas only as thousands groups, so a European "1,5k"
# is refused instead of silently meaning 15,000.
_NUMBER = re.compile(
    r"([+-]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:_[0-9]+)*)(?:\.([0-9]+))?[ \t]*([kKmMbB]?)",
    re.ASCII,
)
_SHOW_MAX = 40
_TEXT_MAX = 64
_UNITS = (("K", 10**3), ("M", 10**6), ("B", 10**9))


class TokenValueError(ValueError):
    """A token amount that is not a positive whole number; ``str()`` is ``f"{shown} {reason}"``.

    Callers that want to say where the value came from put it between the two parts:
    ``f"tokenBudget {e.shown} in {file} {e.reason} — {e.fix or their_fix}"``. ``fix`` is set when
    the usual one ("write e.g. …") would not help, as for a value that is too large.
    """

    def __init__(self, shown: str, reason: str, /, *, what: str = "value", fix: str | None = None) -> None:
        super().__init__(f"{shown or what} {reason}" + (f" — {fix}" if fix else ""))
        self.shown = shown
        self.reason = reason
        self.fix = fix


def describe_value(value: object, /) -> str:
    """A value as it appears in an error message: strings quoted, the rest as written, short."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = f'"{value}"' if value.isprintable() else repr(value)
    else:
        text = repr(value)
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 3] + "..."
    return text


def parse_tokens(value: object, /, *, what: str = "value") -> int:
    """A positive whole number of tokens, at most 2**63-1, from an int, an integral float or a string like ``"1.5M"``.

    :param what: names the value in the message when there is nothing to show (``None``, ``""``).
    :raises TokenValueError: (a ``ValueError``) saying what is wrong, e.g. ``"fifty" is not a number``.
    """
    shown = describe_value(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        if value is None:
            raise TokenValueError("", "is empty", what=what)
        raise TokenValueError(shown, "is not a number", what=what)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TokenValueError(shown, "is not a number", what=what)
        if not value.is_integer():
            raise TokenValueError(shown, "is not a whole number of tokens", what=what)
        tokens = int(value)
    elif isinstance(value, str):
        tokens = _parse_text(value, shown, what)
    else:
        tokens = value
    if tokens <= 0:
        raise TokenValueError(shown, "is not a positive number of tokens", what=what)
    if tokens > MAX_COUNT:  # the ledger is TOML: its integers are 64-bit
        raise TokenValueError(shown, "is too large", what=what, fix=f"the largest is {MAX_COUNT}")
    return tokens


def _parse_text(text: str, shown: str, what: str) -> int:
    stripped = text.strip()
    if not stripped:
        raise TokenValueError("", "is empty", what=what)
    # The length cap keeps int() clear of its 4300-digit limit (CVE-2020-10735) and its cost.
    match = _NUMBER.fullmatch(stripped) if len(stripped) <= _TEXT_MAX else None
    if match is None:
        raise TokenValueError(shown, "is not a number", what=what)
    sign, whole, fraction, suffix = match.groups()
    multiplier = _MULTIPLIERS[suffix.lower()]
    scaled = int(whole.replace(",", "").replace("_", "")) * multiplier
    if fraction:
        numerator = int(fraction) * multiplier
        denominator = 10 ** len(fraction)
        if numerator % denominator:
            raise TokenValueError(shown, "is not a whole number of tokens", what=what)
        scaled += numerator // denominator
    return -scaled if sign == "-" else scaled


def humanize(n: int, /) -> str:
    """A short token count: ``950``, ``8.0K``, ``12.3K``, ``10K``, ``123K``, ``1.0M``, ``2.5B``.

    Below 10 of a unit one decimal is always shown; from 10 to 99.9 one decimal unless it is ``.0``;
    from 100 none. Rounding never produces ``1000K``: it moves up to ``1.0M``.
    """
    if n < 0:
        return "-" + humanize(-n)
    if n < 1000:
        return str(n)
    for index, (unit, scale) in enumerate(_UNITS):
        tenths = (n * 10 + scale // 2) // scale  # round half up, in integers
        if tenths < 100:
            return f"{tenths // 10}.{tenths % 10}{unit}"
        if tenths < 1000:
            return f"{tenths // 10}{unit}" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}{unit}"
        whole = (n + scale // 2) // scale
        if whole < 1000 or index == len(_UNITS) - 1:
            return f"{whole}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover (the last unit always returns)


_USD = re.compile(r"\$?[ \t]*([0-9]+(?:_[0-9]+)*)(?:\.([0-9]+))?", re.ASCII)
MAX_USD = 10**12  # a trillion dollars: anything larger is a typo, not a budget


def parse_usd(value: object, /, *, what: str = "value") -> int:
    """A positive amount of US dollars, as micro-dollars: ``2.5``, ``40``, ``"$2.50"``, ``"2.50"``.

    Exact: the text is read as decimal digits, never through a float (``0.1`` is 100,000 µ$); an int
    or float from TOML or YAML is read through its shortest decimal form. Below a micro-dollar is refused.
    :raises TokenValueError: saying what is wrong (the same shape as for tokens).
    """
    shown = describe_value(value)
    fix = 'write e.g. 2.5 or "$2.50" (US dollars)'
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        if value is None:
            raise TokenValueError("", "is empty", what=what, fix=fix)
        raise TokenValueError(shown, "is not an amount of dollars", what=what, fix=fix)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise TokenValueError(shown, "is not an amount of dollars", what=what, fix=fix)
    text = repr(value) if isinstance(value, float) else str(value)
    text = text.strip()
    if "e" in text.lower() and isinstance(value, float):
        text = f"{value:.6f}"
    match = _USD.fullmatch(text) if len(text) <= _TEXT_MAX else None
    if match is None:
        raise TokenValueError(shown, "is not an amount of dollars", what=what, fix=fix)
    whole, fraction = match.group(1).replace("_", ""), (match.group(2) or "")
    if len(fraction) > 6 and fraction[6:].strip("0"):
        raise TokenValueError(shown, "is finer than a micro-dollar", what=what, fix=fix)
    micros = int(whole) * 1_000_000 + int((fraction + "000000")[:6])
    if micros <= 0:
        raise TokenValueError(shown, "is not a positive amount of dollars", what=what, fix=fix)
    if micros > MAX_USD * 1_000_000:
        raise TokenValueError(shown, "is too large", what=what, fix=f"the largest is ${MAX_USD:,}")
    return micros


def parse_percent(value: object, /, *, what: str = "value") -> float:
    """A share of a plan window, in percent above 0 and at most 100: ``10``, ``"10%"``, ``2.5``.

    :raises TokenValueError: saying what is wrong (the same shape as for tokens).
    """
    shown = describe_value(value)
    fix = 'write e.g. "10%" (a percent of the window, above 0 and at most 100)'
    if value is None:
        raise TokenValueError("", "is empty", what=what, fix=fix)
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and len(value) <= _TEXT_MAX:
        try:
            number = float(value.strip().removesuffix("%").strip())
        except ValueError:
            number = None
    if number is None or number != number:
        raise TokenValueError(shown, "is not a percent", what=what, fix=fix)
    if not 0 < number <= 100:
        raise TokenValueError(shown, "is not above 0 and at most 100", what=what, fix=fix)
    return number
