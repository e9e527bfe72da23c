"""Reading user values: numbers from loose input, their shortest text, and errors that name the field.

Every invalid value raises :class:`ParamError`, a ValueError whose message starts with
``ERROR_PREFIX``, names the field, quotes the value and says what is accepted, so it can be shown to
the user as it is.
"""

from __future__ import annotations

import numbers
import re

from zs2_lib.names import PREFIX

ERROR_PREFIX = f"{PREFIX} "

NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NUMBER_RE = re.compile(NUMBER_PATTERN)
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_MAX_SHOWN = 100  # characters of a bad value quoted in an error message


class ParamError(ValueError):
    """An invalid ZS² Video parameter.

    The message starts with ``ERROR_PREFIX``, then names the field (its public name), quotes the bad
    value and states what is accepted, so it can be shown to the user as it is.
    """


def quote(value: object) -> str:
    """A bad value as an error message shows it: strings in double quotes, others as repr, shortened."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return f'"{text}"' if isinstance(value, str) else text


def error(name: str, value: object, problem: str, accepted: str) -> ParamError:
    """``ZS² Video: <name>: <value> <problem> (<accepted>)``."""
    return ParamError(f"{ERROR_PREFIX}{name}: {quote(value)} {problem} ({accepted})")


def format_number(value: float) -> str:
    """Shortest text that parses back to exactly ``value``: ``repr`` without a trailing ``.0``.

    >>> format_number(0.01), format_number(8.0), format_number(1e-7)
    ('0.01', '8', '1e-07')
    """
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def range_text(low: float, high: float, low_open: bool = False) -> str:
    """``accepted range 0 to 100`` or, for an open lower end, ``accepted range above 0 up to 240``."""
    if low_open:
        return f"accepted range above {format_number(low)} up to {format_number(high)}"
    return f"accepted range {format_number(low)} to {format_number(high)}"


def to_real(value: object) -> int | float | None:
    """A number from a non-bool real or a numeric string (``"16"`` → int, ``"1e-3"`` → float); else None.

    Only plain decimal notation is read: ``"nan"``, ``"inf"``, ``"1_000"`` and non-ASCII digits are not
    numbers here.
    """
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, str):
            text = value.strip()
            if _INTEGER_RE.fullmatch(text):
                return int(text)
            if NUMBER_RE.fullmatch(text):
                return float(text)
    except (OverflowError, ValueError):  # a huge Fraction, or an int of more than 4300 digits
        return None
    return None
