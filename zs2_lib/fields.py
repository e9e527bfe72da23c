"""One parameter's metadata (names, UI text, default, accepted values) and how its values are read.

:func:`param` declares a :class:`~zs2_lib.params.ZS2Params` field together with its metadata, so
every range is written once, next to its field; the UI, the hints, the error messages and the
README's table of controls are all derived from it (a test checks the README).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from zs2_lib.schedule import KEYFRAME_EXAMPLE, Schedule, schedule_accepted
from zs2_lib.values import error, format_number, range_text, to_real

FieldKind = Literal["bool", "int", "float", "schedule", "choice", "formats", "source", "control", "controls"]
METADATA_KEY = "zs2"
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class Field:
    """One parameter of :class:`ZS2Params`: names, UI text, default and accepted values.

    Attributes:
        name: public name, the key in API dicts and in the infotext (``"lambda"``).
        attribute: the ZS2Params attribute (``"lambda_"``).
        kind: how values are read: ``"bool"``, ``"int"``, ``"float"``, ``"schedule"`` (a number or
            keyframes), ``"choice"`` (one of ``choices``), ``"formats"`` (a subset of ``choices``),
            ``"source"`` (a video input: a path or base64 data; the infotext records its name only),
            ``"control"`` (a control video: a path, base64 data or a list of frames; none if empty) or
            ``"controls"`` (one such entry or none per ControlNet unit). Control videos are not
            written to the ZS² infotext item (base64 data does not belong there).
        label: short label for the UI.
        help: one line for the UI: what it does and its useful values (the accepted range is added
            from ``low``/``high``, see :attr:`hint`).
        default: the default in its public form (as ``ZS2Params.to_dict`` writes it, but formats as a
            tuple).
        low: smallest accepted value of an int, float or schedule field.
        high: largest accepted value of an int, float or schedule field.
        low_open: ``low`` itself is not accepted (values must be above it).
        choices: accepted values of a choice or formats field, or of an int field that takes only
            these (as text: ``("1", "2", "4")``).
        slider: ``(minimum, maximum, step)`` of the UI's slider, where the UI shows one; it may be
            narrower than what the API accepts (``low`` to ``high``).
        example: keyframes a schedule field's error messages show (its own values), unquoted.
    """

    name: str
    attribute: str
    kind: FieldKind
    label: str
    help: str
    default: object
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    slider: tuple[float, float, float] | None = None
    example: str = ""

    @property
    def quoted_example(self) -> str:
        """The keyframes error messages show for this schedule field, in double quotes."""
        return f'"{self.example}"' if self.example else KEYFRAME_EXAMPLE

    @property
    def called(self) -> str:
        """How error messages name the field: its UI label, then its API name (``Frames (frames)``)."""
        return self.name if self.label == self.name else f"{self.label} ({self.name})"

    @property
    def accepted(self) -> str:
        """What this field accepts, as error messages state it."""
        if self.kind == "bool":
            return "accepted: true/false, yes/no, on/off, 1/0"
        if self.kind == "choice" or (self.kind == "int" and self.choices):
            return f"accepted: {', '.join(self.choices)}"
        if self.kind == "formats":
            return f"accepted: one or more of {', '.join(self.choices)}, as a list or comma-separated"
        if self.kind == "source":
            return f"accepted: {self.doc_range}"
        if self.kind == "control":
            return f"accepted: {CONTROL_TEXT}"
        if self.kind == "controls":
            return f"accepted: {CONTROLS_TEXT}"
        low, high = self._bounds()
        if self.kind == "schedule":
            return schedule_accepted(low, high, self.quoted_example)
        return range_text(low, high, self.low_open)

    @property
    def hint(self) -> str:
        """The UI's hover hint: :attr:`help` and the accepted values."""
        return f"{self.help} Accepted: {self.doc_range}."

    @property
    def doc_range(self) -> str:
        """The accepted values as the README's table of controls gives them."""
        if self.kind == "bool":
            return "on/off"
        if self.kind in ("choice", "formats") or self.choices:
            names = ", ".join(f"`{choice}`" for choice in self.choices)
            return f"any of {names}" if self.kind == "formats" else names
        if self.kind == "source":
            return "empty, a video file or folder of frames on the server, or base64 video data"
        if self.kind == "control":
            return CONTROL_TEXT
        if self.kind == "controls":
            return CONTROLS_TEXT
        low = f"> {format_number(self.low)}" if self.low_open else format_number(self.low)
        accepted = f"{low} to {format_number(self.high)}"
        if self.kind == "schedule":
            return f"{accepted}, a number or keyframes"
        if self.slider is not None:
            ui = f"{format_number(self.slider[0])} to {format_number(self.slider[1])}"
            return f"{ui} in the UI, {accepted} over the API"
        return accepted

    @property
    def doc_default(self) -> str:
        """The default as the README's table of controls gives it."""
        if self.kind == "bool":
            return "on" if self.default else "off"
        if self.kind == "formats":
            return ", ".join(f"`{name}`" for name in self.default)
        if self.kind == "choice":
            return f"`{self.default}`"
        if self.kind == "source":
            return "empty"
        if self.kind in ("control", "controls"):
            return "none"
        return self.to_text(self.parse(self.default))

    def _bounds(self) -> tuple[float, float]:
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        return low, high

    def parse(self, value: object) -> Any:
        """Coerce a user value to this field's canonical value.

        Raises:
            ParamError: the value cannot be read or is not accepted; the message names this field.
        """
        return _PARSERS[self.kind](self, value)

    def to_public(self, value: Any) -> Any:
        """A canonical value in JSON-friendly form: schedules as text, formats as a list."""
        if self.kind == "schedule":
            return str(value)
        if self.kind == "formats":
            return list(value)
        if self.kind in ("control", "controls"):
            return _listed(value)
        return value

    @property
    def in_infotext(self) -> bool:
        """Whether the field is an item of the ZS² infotext string (control videos are not)."""
        return self.kind not in ("control", "controls") and self.name != "enabled"

    def to_text(self, value: Any) -> str:
        """A canonical value as infotext writes it: ``true``, ``8``, ``0:0.01, 16:0.05``, ``mp4,gif``."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "float":
            return format_number(value)
        if self.kind == "formats":
            return ",".join(value)
        if self.kind == "source":
            return source_label(value)
        return str(value)


def _parse_bool(spec: Field, value: object) -> bool:
    """True/False, or true/false, 1/0, yes/no, on/off in any case; nothing else (not even 1 or 0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise error(spec.called, value, "is not true or false", spec.accepted)


def _parse_int(spec: Field, value: object) -> int:
    """An int, an integral float (``16.0``) or a numeric string (``"16"``) within the field's range."""
    number = to_real(value)
    if number is None:
        raise error(spec.called, value, "is not a number", spec.accepted)
    if isinstance(number, float):
        if not number.is_integer():
            raise error(spec.called, value, "is not a whole number", spec.accepted)
        number = int(number)
    if spec.choices and str(number) not in spec.choices:
        raise error(spec.called, value, "is not one of the choices", spec.accepted)
    low, high = spec._bounds()
    if not low <= number <= high:
        raise error(spec.called, value, "is out of range", spec.accepted)
    return number


def _parse_float(spec: Field, value: object) -> float:
    """An int, a float or a numeric string (not a bool), finite and within the field's range."""
    number = to_real(value)
    if number is None:
        raise error(spec.called, value, "is not a number", spec.accepted)
    try:
        result = float(number) + 0.0  # -0.0 → 0.0
    except OverflowError:
        raise error(spec.called, value, "is out of range", spec.accepted) from None
    if not math.isfinite(result):
        raise error(spec.called, value, "is not a finite number", spec.accepted)
    low, high = spec._bounds()
    if result < low or result > high or (spec.low_open and result == low):
        raise error(spec.called, value, "is out of range", spec.accepted)
    return result


def _parse_schedule(spec: Field, value: Any) -> Schedule:
    """A number, keyframe text or a Schedule, every value within the field's range."""
    low, high = spec._bounds()
    example = [f'"{spec.example}"'] if spec.example else []
    return Schedule.parse(
        value, name=spec.called, low=low, high=high, **dict(zip(["example"], example, strict=False))
    )


def _parse_choice(spec: Field, value: object) -> str:
    """One of the field's choices, in any case and with surrounding whitespace."""
    if isinstance(value, str) and value.strip().lower() in spec.choices:
        return value.strip().lower()
    raise error(spec.called, value, "is not one of the choices", spec.accepted)


def _parse_formats(spec: Field, value: object) -> tuple[str, ...]:
    """A non-empty subset of the choices from ``"mp4, gif"`` or a list/tuple of names, in order, once each."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise error(spec.called, value, "is not a list of formats", spec.accepted)
    names = [item.strip().lower() for item in items if item.strip()]
    for item in names:
        if item not in spec.choices:
            raise error(spec.called, value, f'names the unknown format "{item}"', spec.accepted)
    if not names:
        raise error(spec.called, value, "names no format", spec.accepted)
    return tuple(dict.fromkeys(names))


def _parse_source(spec: Field, value: object) -> str:
    """Text: a path or base64 data (None is empty); read and checked when a run starts, not here."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise error(spec.called, value, "is not text", spec.accepted)
    return value.strip()


def source_label(value: str) -> str:
    """What the infotext records of a source: its file or folder name, never the data."""
    if not value:
        return ""
    if len(value) > 1024 or "\n" in value:
        return "base64 video"
    name = value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[;=]", "_", name)


CONTROL_TEXT = (
    "a folder or video path on the server, a base64 video, or a list of base64 images (one per frame)"
)
CONTROLS_TEXT = "a list with one control video (as for `control_video`) or null per ControlNet unit"


def _parse_control(spec: Field, value: object) -> str | tuple[str, ...] | None:
    """None for nothing; a string (path or base64); or a tuple of non-empty strings (frames)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise error(spec.called, value, "is not a control video", spec.accepted)


def _parse_controls(spec: Field, value: object) -> tuple[str | tuple[str, ...] | None, ...] | None:
    """None, or one control video entry (or None) per ControlNet unit."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == []:
        return None
    given = value
    if isinstance(value, str):  # the UI's hidden text box: a JSON list
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise error(spec.called, given, "is not a JSON list", spec.accepted) from None
    if not isinstance(value, (list, tuple)):
        raise error(spec.called, given, "is not a list", spec.accepted)
    try:
        return tuple(_parse_control(spec, item) for item in value)
    except ValueError:
        raise error(
            spec.called, given, "holds an entry that is not a control video or null", spec.accepted
        ) from None


def _listed(value: Any) -> Any:
    """Tuples as lists, recursively (JSON-friendly)."""
    return [_listed(item) for item in value] if isinstance(value, tuple) else value


_PARSERS: dict[str, Callable[[Field, Any], Any]] = {
    "bool": _parse_bool,
    "int": _parse_int,
    "float": _parse_float,
    "schedule": _parse_schedule,
    "choice": _parse_choice,
    "formats": _parse_formats,
    "source": _parse_source,
    "control": _parse_control,
    "controls": _parse_controls,
}


def param(kind: FieldKind, *, label: str, help: str, default: object, **limits: Any) -> Any:
    """A ZS2Params dataclass field whose metadata is its :class:`Field` (names are filled in later).

    ``limits`` are Field's ``low``, ``high``, ``low_open``, ``choices`` and ``slider``.
    """
    spec = Field(name="", attribute="", kind=kind, label=label, help=help, default=default, **limits)
    return dataclasses.field(default=spec.parse(default), metadata={METADATA_KEY: spec})


def fields_of(cls: type) -> tuple[Field, ...]:
    """The Field of every dataclass field of ``cls``, named: public name = attribute less a trailing ``_``."""
    return tuple(
        dataclasses.replace(f.metadata[METADATA_KEY], name=f.name.rstrip("_"), attribute=f.name)
        for f in dataclasses.fields(cls)
    )
