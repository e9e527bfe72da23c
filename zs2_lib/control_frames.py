"""Control videos for ControlNet units: one RGB frame per video frame, from any of the forms users have.

A control video is given as a folder of frames (natural order, as ControlNet's Batch tab reads it),
a video or image file, one base64 video or animated image, or a list of base64 images (or paths),
one per frame. Frames are decoded when asked for (folders and lists) so a long video is not held
in memory; a video file is decoded once. The frame count is checked against the ZS² video before
sampling: a shorter control video stops the run, or, by option, holds its last frame; it never
loops. Host-free (no ``modules``); ``zs2_lib.webui.features.controlnet`` feeds these frames to
ControlNet's preprocessors.

Kept minimal and separate from the img2img source-video reader so that the two can be unified.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".gif")
_DATA_URL = re.compile(r"^data:([\w/+.-]+)?(;[\w=-]+)*;base64,", re.IGNORECASE)
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM")


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


def natural_key(name: str) -> list[object]:
    """Sort key that puts ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


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
    except ControlVideoError:
        raise
    except Exception as error:  # a decoder's own error: say which field it came from
        raise ControlVideoError(
            f"{field}: cannot be read ({type(error).__name__}: {error}); {ACCEPTED}"
        ) from None
    raise ControlVideoError(f"{field}: is empty; {ACCEPTED}")


ACCEPTED = (
    "accepted: a folder of frames, a video or image file on the server, a base64 video, "
    "or a list of base64 images (one per frame)"
)


def _single(text: str, field: str) -> ControlVideo:
    path = Path(text)
    if len(text) < 4096 and path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: natural_key(p.name),
        )
        if not files:
            raise ControlVideoError(f'{field}: folder "{text}" holds no image ({", ".join(IMAGE_SUFFIXES)})')
        return ControlVideo(
            f'folder "{path.name}" ({len(files)} frames)', len(files), lambda i: _read_image_file(files[i])
        )
    if len(text) < 4096 and path.is_file():
        frames = _decode_media(path.read_bytes(), path.suffix.lower())
        kind = "video" if len(frames) > 1 or path.suffix.lower() in VIDEO_SUFFIXES else "image"
        return _stacked(f'{kind} "{path.name}"', frames)
    data = _base64(text, field)
    frames = _decode_media(data, "")
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
            return _read_image_file(Path(item))
        frames = _decode_media(_base64(item, f"{field}[{i}]"), "")
        return frames[0]

    load(0)  # fail early, before sampling, if the first frame cannot be read
    return ControlVideo(f"{len(items)} base64 frames", len(items), load)


def _stacked(name: str, frames: list[np.ndarray]) -> ControlVideo:
    return ControlVideo(f"{name} ({len(frames)} frames)", len(frames), lambda i: frames[i])


def _base64(text: str, field: str) -> bytes:
    looks_like_path = text.startswith(("/", "~", "./", "../")) and not text.startswith("/9j/")  # /9j/: JPEG
    if looks_like_path or re.match(r"^[A-Za-z]:[\\/]", text):
        raise ControlVideoError(f'{field}: "{text[:200]}" is not a folder or file on the server; {ACCEPTED}')
    body = "".join(_DATA_URL.sub("", text, count=1).split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ControlVideoError(
            f"{field}: is neither a path on the server nor base64 data; {ACCEPTED}"
        ) from None


def _read_image_file(path: Path) -> np.ndarray:
    return _decode_media(path.read_bytes(), path.suffix.lower())[0]


def _decode_media(data: bytes, suffix: str) -> list[np.ndarray]:
    """Every frame of an image, animated image or video, as ``[H, W, 3]`` uint8 RGB."""
    from PIL import Image, ImageSequence

    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        with Image.open(io.BytesIO(data)) as image:
            return [np.asarray(frame.convert("RGB")).copy() for frame in ImageSequence.Iterator(image)]
    import imageio.v3 as iio

    extension = (
        suffix if suffix in VIDEO_SUFFIXES else (".webm" if data.startswith(b"\x1a\x45\xdf\xa3") else ".mp4")
    )
    video = iio.imread(data, index=None, extension=extension, plugin="FFMPEG")
    return [np.ascontiguousarray(frame[..., :3]) for frame in video]
