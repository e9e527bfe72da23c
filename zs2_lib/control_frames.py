"""Control videos for ControlNet units: one RGB frame per video frame, from any of the forms users have.

A control video is given as a folder of frames (natural order, as ControlNet's Batch tab reads it),
a video or image file, one base64 video or animated image, a list of base64 images (or paths), one
per frame, or frames already in memory (img2img's source video). Every file and byte string is read
by :mod:`zs2_lib.video_input`, the one reader of videos; folders and lists are decoded frame by
frame when asked for, so a long control video is not held in memory. The frame count is checked
against the ZS² video before sampling: a shorter control video stops the run, or, by option, holds
its last frame; it never loops. Host-free (no ``modules``); ``zs2_lib.webui.features.controlnet``
feeds these frames to ControlNet's preprocessors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zs2_lib.values import ERROR_PREFIX, ParamError
from zs2_lib.video_input import (
    IMAGE_SUFFIXES,
    decode_base64,
    frame_files,
    natural_key,
    read_data,
    read_frames,
    read_image,
)

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".gif")
ACCEPTED = (
    "accepted: a folder of frames, a video or image file on the server, a base64 video, "
    "or a list of base64 images (one per frame)"
)
_MOST_FRAMES = 1 << 16  # a control video is read whole; the ZS² video's own cap limits what is used

__all__ = ["ACCEPTED", "ControlVideo", "ControlVideoError", "in_memory", "natural_key", "open_control_video"]


class ControlVideoError(ValueError):
    """A control video that cannot be read or does not fit; the message names the field."""


@dataclass(frozen=True)
class ControlVideo:
    """The frames of one control video.

    Attributes:
        name: what the infotext and the console call it, e.g. ``folder "pose" (24 frames)``.
        count: its number of frames.
        load: decodes frame ``i`` (``0 <= i < count``) to an ``[H, W, 3]`` uint8 array.
    """

    name: str
    count: int
    load: Callable[[int], np.ndarray]

    def index(self, frame: int, *, hold_last: bool) -> int:
        """The control frame for video frame ``frame``: the same index, or the last one when held."""
        if frame < self.count:
            return frame
        if hold_last:
            return self.count - 1
        raise IndexError(f"control frame {frame} of {self.name}")

    def frame(self, frame: int, *, hold_last: bool = False) -> np.ndarray:
        """Control frame for video frame ``frame`` as ``[H, W, 3]`` uint8 RGB."""
        return self.load(self.index(frame, hold_last=hold_last))

    def check_length(self, frames: int, *, hold_last: bool, field: str) -> str | None:
        """Raise if this video is too short for ``frames`` frames (unless held); a note if it is longer.

        Raises:
            ControlVideoError: shorter than ``frames`` and ``hold_last`` is off.
        """
        if self.count < frames and not hold_last:
            raise ControlVideoError(
                f"{field}: {self.name} has {self.count} frames for a video of {frames} frames; "
                f"accepted: at least {frames} frames, or turn on hold_last to repeat its last frame"
            )
        if self.count < frames:
            return f"{field}: {self.name} holds its last frame for frames {self.count + 1} to {frames}"
        if self.count > frames:
            return f"{field}: {self.name} has {self.count} frames; the first {frames} are used"
        return None


def in_memory(name: str, frames: Sequence[Any]) -> ControlVideo:
    """A control video of frames already decoded (uint8 ``[H, W, 3]`` arrays or PIL images)."""

    def load(i: int) -> np.ndarray:
        frame = frames[i]
        return frame if isinstance(frame, np.ndarray) else np.asarray(frame.convert("RGB"))

    return ControlVideo(f"{name} ({len(frames)} frames)", len(frames), load)


def open_control_video(entry: object, *, field: str) -> ControlVideo:
    """The control video an entry names: a folder, a file, base64 data, or a list of frames.

    Raises:
        ControlVideoError: nothing readable (the message names ``field`` and what it accepts).
    """
    try:
        if isinstance(entry, (list, tuple)):
            return _frame_list(entry, field)
        if isinstance(entry, str) and entry.strip():
            return _single(entry.strip(), field)
    except ParamError as error:  # the reader names its own field, "video": name this one
        raise ControlVideoError(_renamed(error, field)) from None
    raise ControlVideoError(f"{field}: is empty; {ACCEPTED}")


def _renamed(error: ParamError, field: str) -> str:
    """The reader's message with ``field`` in place of its own field name."""
    text = str(error).removeprefix(ERROR_PREFIX)
    return f"{field}: {text.split(': ', 1)[-1]}"


def _single(text: str, field: str) -> ControlVideo:
    path = Path(text)
    if len(text) < 4096 and path.is_dir():
        files = frame_files(path)
        if not files:
            raise ControlVideoError(f'{field}: folder "{text}" holds no image ({", ".join(IMAGE_SUFFIXES)})')
        return ControlVideo(
            f'folder "{path.name}" ({len(files)} frames)', len(files), lambda i: read_image(files[i])
        )
    if len(text) < 4096 and path.is_file():
        frames = read_frames(path, limit=_MOST_FRAMES).frames
        kind = "video" if len(frames) > 1 or path.suffix.lower() in VIDEO_SUFFIXES else "image"
        return _stacked(f'{kind} "{path.name}"', frames)
    frames = read_data(_base64(text, field), limit=_MOST_FRAMES).frames
    return _stacked("base64 video" if len(frames) > 1 else "base64 image", frames)


def _frame_list(entries: Sequence[object], field: str) -> ControlVideo:
    if not entries or not all(isinstance(item, str) and item.strip() for item in entries):
        raise ControlVideoError(
            f"{field}: a list needs one non-empty base64 image or path per frame; {ACCEPTED}"
        )
    items = [str(item).strip() for item in entries]

    def load(i: int) -> np.ndarray:
        item = items[i]
        if len(item) < 4096 and os.path.isfile(item):
            return read_image(Path(item))
        try:
            return read_data(_base64(item, f"{field}[{i}]"), limit=_MOST_FRAMES).frames[0]
        except ParamError as error:
            raise ControlVideoError(_renamed(error, f"{field}[{i}]")) from None

    load(0)  # fail early, before sampling, if the first frame cannot be read
    return ControlVideo(f"{len(items)} base64 frames", len(items), load)


def _stacked(name: str, frames: np.ndarray) -> ControlVideo:
    return ControlVideo(f"{name} ({len(frames)} frames)", len(frames), lambda i: frames[i])


def _base64(text: str, field: str) -> bytes:
    looks_like_path = text.startswith(("/", "~", "./", "../")) and not text.startswith("/9j/")  # /9j/: JPEG
    if looks_like_path or re.match(r"^[A-Za-z]:[\\/]", text):
        raise ControlVideoError(f'{field}: "{text[:200]}" is not a folder or file on the server; {ACCEPTED}')
    data = decode_base64(text)
    if data is None:
        raise ControlVideoError(f"{field}: is neither a path on the server nor base64 data; {ACCEPTED}")
    return data
