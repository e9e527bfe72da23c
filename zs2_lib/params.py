"""ZS² Video parameters: one validated, frozen params object, per-frame schedules and their text forms.

Host-free (standard library only), so the UI, the API, the infotext reader and the tests share one
definition of every parameter. ``FIELDS`` is the single table of parameters: public name (the key in
API dicts and infotext), Python attribute, UI label, one-line help with the useful range, default and
accepted values. Everything else here reads that table.

* :class:`Schedule` is a per-frame value such as λ_i or μ_i (``../shared/DESIGN.md`` §1): one number,
  or keyframes ``"0:0.01, 16:0.05"`` linearly interpolated between keyframes and held outside them.
* :class:`ZS2Params` holds every parameter, coerced and validated on construction. It converts to
  and from a JSON-friendly dict (:meth:`ZS2Params.to_dict`, :meth:`ZS2Params.from_dict`) and a
  compact infotext string (:meth:`ZS2Params.to_infotext`, :meth:`ZS2Params.from_infotext`), both
  losslessly: floats are written in their shortest round-trip form.
* Every invalid value raises :class:`ParamError`, a ValueError whose message starts with
  ``ERROR_PREFIX`` and names the field, quotes the value and says what is accepted.
"""

from __future__ import annotations

import bisect
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

ERROR_PREFIX = "ZS² Video: "

NOISE_MODELS = ("dependency", "mixed", "progressive", "independent")
SOLVERS = ("exact", "paper")
FORMATS = ("mp4", "webm", "gif", "webp", "png")
LOOPS = ("loop", "once", "pingpong")
STEP_NOISES = ("dependent", "independent")

FieldKind = Literal["bool", "int", "float", "schedule", "choice", "formats"]

_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(_NUMBER)
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_KEYFRAME_RE = re.compile(rf"\s*([0-9]+)\s*:\s*({_NUMBER})\s*")
_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_KEYFRAME_EXAMPLE = '"0:0.01, 16:0.05"'
_MAX_SHOWN = 100  # characters of a bad value quoted in an error message


class ParamError(ValueError):
    """An invalid ZS² Video parameter.

    The message starts with ``ERROR_PREFIX``, then names the field (its public name), quotes the bad
    value and states what is accepted, so it can be shown to the user as it is.
    """


def _quote(value: object) -> str:
    """A bad value as an error message shows it: strings in double quotes, others as repr, shortened."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 1] + "…"
    return f'"{text}"' if isinstance(value, str) else text


def _error(name: str, value: object, problem: str, accepted: str) -> ParamError:
    """``ZS² Video: <name>: <value> <problem> (<accepted>)``."""
    return ParamError(f"{ERROR_PREFIX}{name}: {_quote(value)} {problem} ({accepted})")


def format_number(value: float) -> str:
    """Shortest text that parses back to exactly ``value``: ``repr`` without a trailing ``.0``.

    >>> format_number(0.01), format_number(8.0), format_number(1e-7)
    ('0.01', '8', '1e-07')
    """
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _range_text(low: float, high: float, low_open: bool = False) -> str:
    """``accepted range 0 to 100`` or, for an open lower end, ``accepted range above 0 up to 240``."""
    if low_open:
        return f"accepted range above {format_number(low)} up to {format_number(high)}"
    return f"accepted range {format_number(low)} to {format_number(high)}"


def _schedule_accepted(low: float, high: float) -> str:
    """``accepted: a number or keyframes like "0:0.01, 16:0.05", values 0 to 100``."""
    values = f"values {format_number(low)} to {format_number(high)}"
    return f"accepted: a number or keyframes like {_KEYFRAME_EXAMPLE}, {values}"


def _to_real(value: object) -> int | float | None:
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
            if _NUMBER_RE.fullmatch(text):
                return float(text)
    except (OverflowError, ValueError):  # a huge Fraction, or an int of more than 4300 digits
        return None
    return None


@dataclass(frozen=True)
class Schedule:
    """A per-frame value: one number, or keyframes linearly interpolated between them.

    Before the first keyframe the first value holds, after the last the last value holds. Frames are
    0-based. Construction sorts the keyframes and collapses a schedule whose values are all equal to
    the single keyframe ``(0, value)``, so equal schedules compare equal and ``is_constant`` is
    exact. ``str(schedule)`` is the canonical text, and ``Schedule.parse(str(s), ...) == s``.

    Attributes:
        keyframes: ``((frame, value), ...)`` sorted by frame, frames unique and ≥ 0, values finite.
    """

    keyframes: tuple[tuple[int, float], ...]

    def __post_init__(self) -> None:
        """Sort, check and canonicalise the keyframes (raises ParamError for invalid ones)."""
        pairs = sorted((int(frame), float(value) + 0.0) for frame, value in self.keyframes)  # -0.0 → 0.0
        frames = [frame for frame, _ in pairs]
        if (
            not pairs
            or frames[0] < 0
            or len(set(frames)) != len(frames)
            or not all(math.isfinite(value) for _, value in pairs)
        ):
            raise _error(
                "schedule",
                self.keyframes,
                "is not a valid keyframe list",
                "accepted: one or more (frame, value) pairs, frames ≥ 0 and each once, values finite",
            )
        if len({value for _, value in pairs}) == 1:
            pairs = [(0, pairs[0][1])]
        object.__setattr__(self, "keyframes", tuple(pairs))

    @classmethod
    def constant(cls, value: float) -> Schedule:
        """The schedule that is ``value`` at every frame."""
        return cls(((0, value),))

    @classmethod
    def parse(cls, value: str | float | Schedule, *, name: str, low: float, high: float) -> Schedule:
        """Read a schedule from text, a number or a Schedule, with every value in ``[low, high]``.

        Args:
            value: a number (``0.01``, ``"1e-3"``: the same value at every frame), keyframes
                ``"0:0.01, 16:0.05"`` (``frame:value`` pairs separated by commas, in any order;
                whitespace and a trailing comma are allowed), or a Schedule (only range-checked).
            name: the field's public name, for error messages.
            low: the smallest accepted value.
            high: the largest accepted value.

        Raises:
            ParamError: empty or malformed text, a repeated frame, a non-finite or out-of-range value.
        """
        accepted = _schedule_accepted(low, high)
        if isinstance(value, Schedule):
            pairs = list(value.keyframes)
        elif isinstance(value, str):
            pairs = _parse_keyframes(value, name, accepted)
        else:
            number = _to_real(value)
            if number is None:
                raise _error(name, value, "is not a number or a keyframe list", accepted)
            pairs = [(0, float(number))]
        _check_pairs(pairs, name, value, low, high, accepted)
        return cls(tuple(pairs))

    @property
    def is_constant(self) -> bool:
        """True if every frame has the same value."""
        return len(self.keyframes) == 1

    def at(self, frame: int) -> float:
        """The value at 0-based ``frame``: linear between keyframes, held before and after them."""
        if frame < 0:
            raise ValueError(f"frame must be 0 or more, got {frame}")
        frames = [key for key, _ in self.keyframes]
        index = bisect.bisect_right(frames, frame)
        if index == 0:
            return self.keyframes[0][1]
        if index == len(frames):
            return self.keyframes[-1][1]
        (f0, v0), (f1, v1) = self.keyframes[index - 1], self.keyframes[index]
        t = (frame - f0) / (f1 - f0)
        value = v0 * (1.0 - t) + v1 * t
        return min(max(value, min(v0, v1)), max(v0, v1))  # rounding never leaves [v0, v1]

    def values(self, start: int, count: int) -> list[float]:
        """The values at frames ``start`` .. ``start + count - 1``."""
        if count < 0:
            raise ValueError(f"count must be 0 or more, got {count}")
        return [self.at(frame) for frame in range(start, start + count)]

    def __str__(self) -> str:
        """Canonical text: ``"0.01"`` for a constant, ``"0:0.01, 16:0.05"`` for keyframes."""
        if self.is_constant:
            return format_number(self.keyframes[0][1])
        return ", ".join(f"{frame}:{format_number(value)}" for frame, value in self.keyframes)


def _parse_keyframes(text: str, name: str, accepted: str) -> list[tuple[int, float]]:
    """``"0.01"`` → ``[(0, 0.01)]``; ``"0:0.01, 16:0.05,"`` → ``[(0, 0.01), (16, 0.05)]`` (unchecked)."""
    stripped = text.strip()
    if not stripped:
        raise _error(name, text, "is empty", accepted)
    if _NUMBER_RE.fullmatch(stripped):
        return [(0, float(stripped))]
    items = stripped.split(",")
    if len(items) > 1 and not items[-1].strip():
        items.pop()  # one trailing comma
    matches = [_KEYFRAME_RE.fullmatch(item) for item in items]
    if not all(matches):
        raise _error(name, text, "is not a number or a keyframe list", accepted)
    try:
        return [(int(match.group(1)), float(match.group(2))) for match in matches if match]
    except ValueError:  # a frame index of more than 4300 digits
        raise _error(name, text, "has a frame index too large to read", accepted) from None


def _check_pairs(
    pairs: list[tuple[int, float]], name: str, value: object, low: float, high: float, accepted: str
) -> None:
    """Raise ParamError naming ``name`` for a repeated frame or a non-finite or out-of-range value."""
    seen: set[int] = set()
    for frame, _ in pairs:
        if frame in seen:
            raise _error(name, value, f"lists frame {frame} more than once", accepted)
        seen.add(frame)
    for frame, number in pairs:
        if not math.isfinite(number):
            problem = "is not a finite number" if len(pairs) == 1 else f"is not finite at frame {frame}"
            raise _error(name, value, problem, accepted)
        if not low <= number <= high:
            where = "" if len(pairs) == 1 else f" at frame {frame}"
            raise _error(name, value, f"is out of range{where}", accepted)


@dataclass(frozen=True)
class Field:
    """One parameter of :class:`ZS2Params`: names, UI text, default and accepted values.

    Attributes:
        name: public name, the key in API dicts and in the infotext (``"lambda"``).
        attribute: the ZS2Params attribute (``"lambda_"``).
        kind: how values are read: ``"bool"``, ``"int"``, ``"float"``, ``"schedule"`` (a number or
            keyframes), ``"choice"`` (one of ``choices``) or ``"formats"`` (a subset of ``choices``).
        label: short label for the UI.
        help: one line for the UI, with the useful range.
        default: the default in its public form (as ``ZS2Params.to_dict`` writes it, but formats as a
            tuple).
        low: smallest accepted value of an int, float or schedule field.
        high: largest accepted value of an int, float or schedule field.
        low_open: ``low`` itself is not accepted (values must be above it).
        choices: accepted values of a choice or formats field.
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

    @property
    def accepted(self) -> str:
        """What this field accepts, as error messages state it."""
        if self.kind == "bool":
            return "accepted: true/false, yes/no, on/off, 1/0"
        if self.kind == "choice":
            return f"accepted: {', '.join(self.choices)}"
        if self.kind == "formats":
            return f"accepted: one or more of {', '.join(self.choices)}, as a list or comma-separated"
        low, high = self._bounds()
        if self.kind == "schedule":
            return _schedule_accepted(low, high)
        return _range_text(low, high, self.low_open)

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
        return value

    def to_text(self, value: Any) -> str:
        """A canonical value as infotext writes it: ``true``, ``8``, ``0:0.01, 16:0.05``, ``mp4,gif``."""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "float":
            return format_number(value)
        if self.kind == "formats":
            return ",".join(value)
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
    raise _error(spec.name, value, "is not true or false", spec.accepted)


def _parse_int(spec: Field, value: object) -> int:
    """An int, an integral float (``16.0``) or a numeric string (``"16"``) within the field's range."""
    number = _to_real(value)
    if number is None:
        raise _error(spec.name, value, "is not a number", spec.accepted)
    if isinstance(number, float):
        if not number.is_integer():
            raise _error(spec.name, value, "is not a whole number", spec.accepted)
        number = int(number)
    low, high = spec._bounds()
    if not low <= number <= high:
        raise _error(spec.name, value, "is out of range", spec.accepted)
    return number


def _parse_float(spec: Field, value: object) -> float:
    """An int, a float or a numeric string (not a bool), finite and within the field's range."""
    number = _to_real(value)
    if number is None:
        raise _error(spec.name, value, "is not a number", spec.accepted)
    try:
        result = float(number) + 0.0  # -0.0 → 0.0
    except OverflowError:
        raise _error(spec.name, value, "is out of range", spec.accepted) from None
    if not math.isfinite(result):
        raise _error(spec.name, value, "is not a finite number", spec.accepted)
    low, high = spec._bounds()
    if result < low or result > high or (spec.low_open and result == low):
        raise _error(spec.name, value, "is out of range", spec.accepted)
    return result


def _parse_schedule(spec: Field, value: Any) -> Schedule:
    """A number, keyframe text or a Schedule, every value within the field's range."""
    low, high = spec._bounds()
    return Schedule.parse(value, name=spec.name, low=low, high=high)


def _parse_choice(spec: Field, value: object) -> str:
    """One of the field's choices, in any case and with surrounding whitespace."""
    if isinstance(value, str) and value.strip().lower() in spec.choices:
        return value.strip().lower()
    raise _error(spec.name, value, "is not one of the choices", spec.accepted)


def _parse_formats(spec: Field, value: object) -> tuple[str, ...]:
    """A non-empty subset of the choices from ``"mp4, gif"`` or a list/tuple of names, in order, once each."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise _error(spec.name, value, "is not a list of formats", spec.accepted)
    names = [item.strip().lower() for item in items if item.strip()]
    for item in names:
        if item not in spec.choices:
            raise _error(spec.name, value, f'names the unknown format "{item}"', spec.accepted)
    if not names:
        raise _error(spec.name, value, "names no format", spec.accepted)
    return tuple(dict.fromkeys(names))


_PARSERS: dict[str, Callable[[Field, Any], Any]] = {
    "bool": _parse_bool,
    "int": _parse_int,
    "float": _parse_float,
    "schedule": _parse_schedule,
    "choice": _parse_choice,
    "formats": _parse_formats,
}

FIELDS: tuple[Field, ...] = (
    Field(
        name="enabled",
        attribute="enabled",
        kind="bool",
        label="Enable ZS² Video",
        help="Turn the batch into the frames of one video.",
        default=False,
    ),
    Field(
        name="frames",
        attribute="frames",
        kind="int",
        label="Frames",
        help="Frames in the video: 8 to 32 for a clip, hundreds for a long video (made in chunks).",
        default=16,
        low=1,
        high=4096,
    ),
    Field(
        name="fps",
        attribute="fps",
        kind="float",
        label="FPS",
        help="Frames per second of the saved video: 8 to 12 for a slow clip, 24 for smooth motion.",
        default=8.0,
        low=0,
        high=240,
        low_open=True,
    ),
    Field(
        name="lambda",
        attribute="lambda_",
        kind="schedule",
        label="Noise dependency λ",
        help="Dependency-noise strength per frame: near 0 keeps the noise almost static, 0.01 to 0.25 is "
        'typical, about 1.6 and above makes frames independent. A number or keyframes "0:0.01, 16:0.05" '
        "(0 to 100).",
        default="0.01",
        low=0,
        high=100,
    ),
    Field(
        name="mu",
        attribute="mu",
        kind="schedule",
        label="Temporal momentum μ",
        help="Momentum of self-attention keys and values across frames: 0 is plain self-attention, 1 "
        'attends to frame 1 only, 0.9 to 0.98 is typical. A number or keyframes "0:0.98, 16:0.9" (0 to 1).',
        default="0.98",
        low=0,
        high=1,
    ),
    Field(
        name="noise_model",
        attribute="noise_model",
        kind="choice",
        label="Noise model",
        help="Initial noise across frames: dependency (the paper's), mixed or progressive (shared-noise "
        "baselines), or independent.",
        default="dependency",
        choices=NOISE_MODELS,
    ),
    Field(
        name="alpha",
        attribute="alpha",
        kind="schedule",
        label="Sharing ratio",
        help="Share of each frame's noise taken from the shared (mixed) or previous (progressive) noise, "
        "0 to 1; a number or keyframes. Unused by the dependency and independent models.",
        default="0.9",
        low=0,
        high=1,
    ),
    Field(
        name="search",
        attribute="search",
        kind="int",
        label="Search candidates",
        help="Seeded candidate draws per frame the dependency noise picks from (R, paper default 10), "
        "1 to 1000. With the Gaussian fix on, the pick changes which draw is used but not its statistics.",
        default=10,
        low=1,
        high=1000,
    ),
    Field(
        name="solver",
        attribute="solver",
        kind="choice",
        label="α solver",
        help="How each frame's mixing weight is found: exact (closed form) or paper (the paper's line "
        "search, which cannot tell λ below about 0.01 apart).",
        default="exact",
        choices=SOLVERS,
    ),
    Field(
        name="debias",
        attribute="debias",
        kind="bool",
        label="Keep noise Gaussian",
        help="Keep every frame's noise Gaussian over long videos (the search's biased coordinate is removed; "
        "λ is still met exactly). Off is the paper's literal search, whose noise drifts into speckles.",
        default=True,
    ),
    Field(
        name="formats",
        attribute="formats",
        kind="formats",
        label="Video formats",
        help="Files to write, one or more of mp4, webm, gif, webp, png (an image sequence).",
        default=("mp4", "gif"),
        choices=FORMATS,
    ),
    Field(
        name="loop",
        attribute="loop",
        kind="choice",
        label="Playback",
        help="loop: play forever; once: play once; pingpong: forward then backward, forever.",
        default="loop",
        choices=LOOPS,
    ),
    Field(
        name="chunk",
        attribute="chunk",
        kind="int",
        label="Frames per chunk",
        help="Frames sampled together (one batch); longer videos are made chunk by chunk with the noise and "
        "attention state carried over exactly, so VRAM depends on this, not on the length: a chunk costs "
        "what a batch of that many images does. Lower it if VRAM runs out.",
        default=16,
        low=1,
        high=4096,
    ),
    Field(
        name="step_noise",
        attribute="step_noise",
        kind="choice",
        label="Sampler noise",
        help="Per-step noise of ancestral and SDE samplers (Euler a, DDIM with eta > 0, DPM++ SDE, ...): "
        "dependent follows the frames' noise chain (consistent frames), independent is fresh per frame.",
        default="dependent",
        choices=STEP_NOISES,
    ),
)

FIELD_BY_NAME: Mapping[str, Field] = MappingProxyType({spec.name: spec for spec in FIELDS})

_DEFAULTS: dict[str, Any] = {spec.attribute: spec.parse(spec.default) for spec in FIELDS}


@dataclass(frozen=True)
class ZS2Params:
    """Every ZS² Video parameter, coerced and validated on construction (see ``FIELDS``).

    Construction accepts the same loose forms as :meth:`from_dict` (``"16"`` for an int,
    ``"0:0.01, 16:0.05"`` for a schedule, ``"mp4, gif"`` for formats, ...) and stores the canonical
    value, so equal settings compare equal. ``dataclasses.replace`` validates too.

    Attributes:
        enabled: make a video from the batch.
        frames: total frames of the video, 1 to 4096.
        fps: frames per second of the saved video, above 0 up to 240.
        lambda_: dependency-noise strength λ_i per frame (public name ``lambda``), 0 to 100.
        mu: temporal momentum μ_i per frame, 0 to 1.
        noise_model: ``"dependency"``, ``"mixed"``, ``"progressive"`` or ``"independent"``.
        alpha: sharing ratio per frame of the mixed and progressive baselines, 0 to 1.
        search: random-search candidates per frame R, 1 to 1000.
        solver: ``"exact"`` (closed-form α) or ``"paper"`` (the paper's line search).
        debias: keep the noise Gaussian; False is the paper's literal random search.
        formats: video files to write, a non-empty ordered subset of ``FORMATS``.
        loop: ``"loop"``, ``"once"`` or ``"pingpong"``.
        chunk: frames sampled per A1111 batch, 1 to 4096; longer videos take several batches.
        step_noise: ancestral samplers' per-step noise, ``"dependent"`` or ``"independent"``.

    Raises:
        ParamError: a value is invalid; the message names the field by its public name.
    """

    enabled: bool = _DEFAULTS["enabled"]
    frames: int = _DEFAULTS["frames"]
    fps: float = _DEFAULTS["fps"]
    lambda_: Schedule = _DEFAULTS["lambda_"]
    mu: Schedule = _DEFAULTS["mu"]
    noise_model: str = _DEFAULTS["noise_model"]
    alpha: Schedule = _DEFAULTS["alpha"]
    search: int = _DEFAULTS["search"]
    solver: str = _DEFAULTS["solver"]
    debias: bool = _DEFAULTS["debias"]
    formats: tuple[str, ...] = _DEFAULTS["formats"]
    loop: str = _DEFAULTS["loop"]
    chunk: int = _DEFAULTS["chunk"]
    step_noise: str = _DEFAULTS["step_noise"]

    def __post_init__(self) -> None:
        """Coerce every field to its canonical value, raising ParamError for an invalid one."""
        for spec in FIELDS:
            object.__setattr__(self, spec.attribute, spec.parse(getattr(self, spec.attribute)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ZS2Params:
        """Params from a mapping keyed by public names; missing keys keep their defaults.

        Values are coerced per field kind: bools from True/False or ``"true"/"false"/"1"/"0"/"yes"/
        "no"/"on"/"off"`` (any case); ints from ints, integral floats and numeric strings (not bools);
        floats from numbers and numeric strings (not bools); schedules from numbers or text; formats
        from a list or a comma-separated string.

        Raises:
            ParamError: an unknown key (the message lists the accepted names) or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise _error("parameters", data, "is not a mapping", "accepted: a dict keyed by parameter names")
        unknown = [key for key in data if key not in FIELD_BY_NAME]
        if unknown:
            shown = ", ".join(_quote(key) for key in unknown)
            raise ParamError(
                f"{ERROR_PREFIX}parameters: unknown name {shown} (accepted names: {', '.join(FIELD_BY_NAME)})"
            )
        return cls(**{FIELD_BY_NAME[key].attribute: value for key, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        """Public names to JSON-friendly values (schedules as text, formats as a list), all fields.

        ``ZS2Params.from_dict(p.to_dict()) == p``.
        """
        return {spec.name: spec.to_public(getattr(self, spec.attribute)) for spec in FIELDS}

    def to_infotext(self) -> str:
        """One compact string for A1111's infotext: ``frames=16; fps=8; lambda=0.01; ...``.

        Items are ``name=value`` separated by ``"; "``, in ``FIELDS`` order. ``enabled`` is not
        written: a stored infotext means ZS² Video was on. No value contains ``;`` or ``=``.
        ``ZS2Params.from_infotext(p.to_infotext()) == dataclasses.replace(p, enabled=True)``.
        """
        written = (spec for spec in FIELDS if spec.name != "enabled")
        return "; ".join(f"{spec.name}={spec.to_text(getattr(self, spec.attribute))}" for spec in written)

    @classmethod
    def from_infotext(cls, text: str) -> ZS2Params:
        """Params from :meth:`to_infotext`'s string, with ``enabled=True``.

        Missing keys keep their defaults. Unknown keys, and ``enabled``, are ignored without error,
        so infotexts written by later versions with more parameters still load.

        Raises:
            ParamError: an item that is not ``name=value``, or an invalid value.
        """
        accepted = 'accepted: items like "frames=16" separated by "; "'
        if not isinstance(text, str):
            raise _error("infotext", text, "is not text", accepted)
        values: dict[str, str] = {}
        for item in text.split(";"):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise _error("infotext", item.strip(), "is not a name=value item", accepted)
            if key.strip() in FIELD_BY_NAME and key.strip() != "enabled":
                values[key.strip()] = value.strip()
        return cls.from_dict({**values, "enabled": True})

    def lambdas(self, start: int, count: int) -> list[float]:
        """λ_i for frames ``start`` .. ``start + count - 1``."""
        return self.lambda_.values(start, count)

    def mus(self, start: int, count: int) -> list[float]:
        """μ_i for frames ``start`` .. ``start + count - 1``."""
        return self.mu.values(start, count)

    def alphas(self, start: int, count: int) -> list[float]:
        """Sharing ratios for frames ``start`` .. ``start + count - 1``."""
        return self.alpha.values(start, count)
