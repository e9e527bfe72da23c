"""Per-frame values such as λ_i or μ_i: one number, or keyframes ``"0:0.01, 16:0.05"``, and their grammar."""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

from zs2_lib.values import NUMBER_PATTERN, NUMBER_RE, error, format_number, to_real

KEYFRAME_EXAMPLE = '"0:0.01, 16:0.05"'
MAX_KEYFRAMES = 256
"""Most keyframes a schedule may have (it is copied into every frame's infotext)."""
_KEYFRAME_RE = re.compile(rf"\s*([0-9]+)\s*:\s*({NUMBER_PATTERN})\s*")


def schedule_accepted(low: float, high: float, example: str = KEYFRAME_EXAMPLE) -> str:
    """``accepted: a number or keyframes like "0:0.01, 16:0.05", values 0 to 100`` (the field's example)."""
    values = f"values {format_number(low)} to {format_number(high)}"
    return f"accepted: a number or keyframes like {example}, {values}"


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
    _frames: tuple[int, ...] = field(init=False, repr=False, compare=False)

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
            raise error(
                "schedule",
                self.keyframes,
                "is not a valid keyframe list",
                "accepted: one or more (frame, value) pairs, frames ≥ 0 and each once, values finite",
            )
        if len({value for _, value in pairs}) == 1:
            pairs = [(0, pairs[0][1])]
        object.__setattr__(self, "keyframes", tuple(pairs))
        object.__setattr__(self, "_frames", tuple(frame for frame, _ in pairs))  # for O(log k) lookups

    @classmethod
    def constant(cls, value: float) -> Schedule:
        """The schedule that is ``value`` at every frame."""
        return cls(((0, value),))

    @classmethod
    def parse(
        cls,
        value: str | float | Schedule,
        *,
        name: str,
        low: float,
        high: float,
        example: str = KEYFRAME_EXAMPLE,
    ) -> Schedule:
        """Read a schedule from text, a number or a Schedule, with every value in ``[low, high]``.

        Args:
            value: a number (``0.01``, ``"1e-3"``: the same value at every frame), keyframes
                ``"0:0.01, 16:0.05"`` (``frame:value`` pairs separated by commas, in any order;
                whitespace and a trailing comma are allowed), or a Schedule (only range-checked).
            name: the field as error messages name it.
            low: the smallest accepted value.
            high: the largest accepted value.
            example: keyframes the error messages show, quoted.

        Raises:
            ParamError: empty or malformed text, more than ``MAX_KEYFRAMES`` keyframes, a repeated
                frame, a non-finite or out-of-range value.
        """
        accepted = schedule_accepted(low, high, example)
        if isinstance(value, Schedule):
            pairs = list(value.keyframes)
        elif isinstance(value, str):
            pairs = _parse_keyframes(value, name, accepted)
        else:
            number = to_real(value)
            if number is None:
                raise error(name, value, "is not a number or a keyframe list", accepted)
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
        index = bisect.bisect_right(self._frames, frame)  # O(log k)
        if index == 0:
            return self.keyframes[0][1]
        if index == len(self._frames):
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
        raise error(name, text, "is empty", accepted)
    if NUMBER_RE.fullmatch(stripped):
        return [(0, float(stripped))]
    if stripped.count(",") > MAX_KEYFRAMES:  # refused before reading a huge list
        raise error(name, text, "has too many keyframes", f"{accepted}, at most {MAX_KEYFRAMES} keyframes")
    items = stripped.split(",")
    if len(items) > 1 and not items[-1].strip():
        items.pop()  # one trailing comma
    matches = [_KEYFRAME_RE.fullmatch(item) for item in items]
    if not all(matches):
        raise error(name, text, "is not a number or a keyframe list", accepted)
    try:
        return [(int(match.group(1)), float(match.group(2))) for match in matches if match]
    except ValueError:  # a frame index of more than 4300 digits
        raise error(name, text, "has a frame index too large to read", accepted) from None


def _check_pairs(
    pairs: list[tuple[int, float]], name: str, value: object, low: float, high: float, accepted: str
) -> None:
    """Raise ParamError naming ``name`` for a repeated frame or a non-finite or out-of-range value."""
    if len(pairs) > MAX_KEYFRAMES:
        raise error(
            name, value, f"has {len(pairs)} keyframes", f"{accepted}, at most {MAX_KEYFRAMES} keyframes"
        )
    seen: set[int] = set()
    for frame, _ in pairs:
        if frame in seen:
            raise error(name, value, f"lists frame {frame} more than once", accepted)
        seen.add(frame)
    for frame, number in pairs:
        if not math.isfinite(number):
            problem = "is not a finite number" if len(pairs) == 1 else f"is not finite at frame {frame}"
            raise error(name, value, problem, accepted)
        if not low <= number <= high:
            where = "" if len(pairs) == 1 else f" at frame {frame}"
            raise error(name, value, f"is out of range{where}", accepted)
