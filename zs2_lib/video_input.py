"""Videos as input: every frame of a file, a folder of frames or bytes, exactly.

:func:`read_frames` reads MP4, WebM, MOV, MKV, AVI (ffmpeg from imageio-ffmpeg, with timestamps
passed through so that no frame is dropped or duplicated), GIF, animated WebP and still images
(Pillow, frame by frame), or a folder of images (sorted naturally: ``frame2`` before ``frame10``),
and keeps the frames ``start``, ``start + step``, ... (``count`` of them, or to the end);
:func:`read_data` reads the same from bytes. :func:`resolve_source` turns an API value (a server
path, or a base64 video, optionally a ``data:`` URL) into a file. The one reader of videos: img2img's
source and ControlNet's control videos (``zs2_lib.control_frames``) both read through it.

Every problem raises :class:`~zs2_lib.values.ParamError` naming the field as labelled (``Video
input (video)``, ``Start frame (video_start)``, ``Frame count (video_frames)``), so a caller can
refuse the request before sampling.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageSequence

from zs2_lib import ffmpeg
from zs2_lib.params import FIELD_BY_NAME
from zs2_lib.values import ParamError, error

FFMPEG_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
PILLOW_SUFFIXES = (".gif", ".webp", ".png", ".jpg", ".jpeg", ".bmp")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
ACCEPTED = "accepted: an MP4, WebM, MOV, MKV, AVI, GIF or WebP file or a folder of PNG/JPEG/WebP/BMP frames"
VIDEO, START, COUNT = (FIELD_BY_NAME[name].called for name in ("video", "video_start", "video_frames"))
"""How messages name the source and its range: as labelled, with the API name (``Video input (video)``)."""
_DATA_URL = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)
_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]+=*\s*$")


@dataclass(frozen=True)
class VideoFrames:
    """Frames read from a video source.

    Attributes:
        frames: uint8 ``[F, H, W, 3]`` RGB, in order.
        fps: the source's frame rate, None for a folder of frames.
        indices: the source frame index of each frame.
        total: frames in the source, or None when reading stopped before its end.
        name: the source's file or folder name (for the infotext; never the data).
        path: the source file, or None for a folder.
    """

    frames: np.ndarray
    fps: float | None
    indices: tuple[int, ...]
    total: int | None
    name: str
    path: Path | None

    @property
    def step(self) -> int:
        """Source frames per frame read."""
        return self.indices[1] - self.indices[0] if len(self.indices) > 1 else 1

    @property
    def output_fps(self) -> float | None:
        """The rate that keeps the source's speed: its fps divided by the step."""
        return None if self.fps is None else self.fps / self.step

    def span_seconds(self) -> tuple[float, float] | None:
        """``(start, duration)`` of the frames read in the source's timeline, None without an fps."""
        if self.fps is None:
            return None
        return self.indices[0] / self.fps, len(self.indices) * self.step / self.fps


def read_frames(
    source: str | os.PathLike[str], start: int = 0, count: int | None = None, step: int = 1, limit: int = 4096
) -> VideoFrames:
    """Frames ``start, start + step, ...`` of a video file or folder: ``count`` of them, or all to the end.

    Args:
        source: a video file or a folder of images.
        start: first source frame (0-based), ≥ 0.
        count: frames to read, ≥ 1, or None for every selected frame to the end.
        step: read every ``step``-th frame, ≥ 1.
        limit: most frames accepted (a request for more is refused, naming ``video_frames``).

    Raises:
        ParamError: unreadable source, no frames, frames of mixed sizes, or a range outside it.
    """
    path = Path(source)
    _check_range(start, count, step, limit)
    if not path.exists():
        raise error(VIDEO, str(source), "is no file or folder on the server", ACCEPTED)
    if path.is_dir():
        frames_iter, fps = _folder_frames(path), None
    elif path.suffix.lower() in PILLOW_SUFFIXES:
        frames_iter, fps = _pillow_frames(path, path.name)
    else:
        frames_iter, fps = _ffmpeg_frames(path)
    return _select(frames_iter, fps, start, count, step, limit, path.name, None if path.is_dir() else path)


def read_data(data: bytes, *, limit: int = 4096, name: str = "uploaded") -> VideoFrames:
    """Every frame of a video or image given as bytes (sniffed: GIF, WebP, PNG, JPEG, BMP, WebM, else MP4).

    Images are decoded in memory; a video goes through a temporary file that is removed at once.
    The result's ``name`` is ``name`` plus the sniffed suffix, its ``path`` None.

    Raises:
        ParamError: the data cannot be decoded (naming ``video``).
    """
    suffix = sniff_suffix(data)
    label = f"{name}{suffix}"
    if suffix in PILLOW_SUFFIXES:
        frames_iter, fps = _pillow_frames(io.BytesIO(data), label)
        return _select(frames_iter, fps, 0, None, 1, limit, label, None)
    handle, temporary = tempfile.mkstemp(prefix="zs2-input-", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        frames_iter, fps = _ffmpeg_frames(Path(temporary), label)
        return _select(frames_iter, fps, 0, None, 1, limit, label, None)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _check_range(start: int, count: int | None, step: int, limit: int) -> None:
    if start < 0 or step < 1 or (count is not None and count < 1):
        raise error(START, (start, count, step), "is not a valid range", "start ≥ 0, count ≥ 1, step ≥ 1")
    if count is not None and count > limit:
        raise error(COUNT, count, "is more than the server allows", f"accepted: at most {limit}")


def _select(
    frames_iter: Iterator[np.ndarray],
    fps: float | None,
    start: int,
    count: int | None,
    step: int,
    limit: int,
    name: str,
    path: Path | None,
) -> VideoFrames:
    """Frames ``start, start + step, ...`` of a decoded stream, read no further than needed."""
    reached_end = False
    selected: list[np.ndarray] = []
    indices: list[int] = []
    total = 0
    end = None if count is None else start + step * (count - 1)
    for index, frame in enumerate(frames_iter):
        total = index + 1
        if index >= start and (index - start) % step == 0:
            if len(selected) >= limit:
                raise error(COUNT, f"more than {limit}", "frames selected", f"accepted: at most {limit}")
            if selected and frame.shape != selected[0].shape:
                raise error(
                    VIDEO,
                    name,
                    f"has frames of mixed sizes ({frame.shape[1]}×{frame.shape[0]} "
                    f"after {selected[0].shape[1]}×{selected[0].shape[0]})",
                    "accepted: frames of one size",
                )
            selected.append(frame)
            indices.append(index)
        if end is not None and index >= end:
            break
    else:
        reached_end = True
    if total == 0:
        raise error(VIDEO, name, "has no frames", ACCEPTED)
    if start >= total:
        raise error(START, start, f"is outside the video ({total} frames)", f"accepted: 0 to {total - 1}")
    if end is not None and end >= total:
        available = (total - 1 - start) // step + 1
        raise error(
            COUNT,
            count,
            f"frames from frame {start} every {step} run past the video ({total} frames)",
            f"accepted: 1 to {available}",
        )
    return VideoFrames(
        frames=np.stack(selected),
        fps=fps,
        indices=tuple(indices),
        total=total if reached_end else None,
        name=name,
        path=path,
    )


def natural_key(name: str) -> list[object]:
    """Sort key that puts ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    """The image files of a folder of frames, in natural order (``frame2`` before ``frame10``)."""
    return sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()),
        key=lambda f: natural_key(f.name),
    )


def read_image(file: Path) -> np.ndarray:
    """One image file as ``[H, W, 3]`` uint8 RGB (the first frame of an animated one).

    Raises:
        ParamError: not a readable image (naming ``video``).
    """
    try:
        with Image.open(file) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as err:
        raise error(VIDEO, file.name, f"cannot be read as an image ({err})", ACCEPTED) from err


def _folder_frames(folder: Path) -> Iterator[np.ndarray]:
    for file in frame_files(folder):
        yield read_image(file)


def _pillow_frames(source: Path | BinaryIO, name: str) -> tuple[Iterator[np.ndarray], float | None]:
    """GIF, animated WebP and still images: every stored frame, composited, and the mean frame rate."""
    try:
        image = Image.open(source)
        durations = [_loaded(frame).info.get("duration", 0) for frame in ImageSequence.Iterator(image)]
    except OSError as err:
        raise error(VIDEO, name, f"cannot be read ({err})", ACCEPTED) from err
    mean = sum(durations) / len(durations) if durations else 0
    fps = 1000.0 / mean if mean > 0 else None

    def frames() -> Iterator[np.ndarray]:
        with image:
            for frame in ImageSequence.Iterator(image):
                yield np.asarray(frame.convert("RGB"))

    return frames(), fps


def _loaded(frame: Image.Image) -> Image.Image:
    """The frame decoded (WebP sets a frame's duration only then)."""
    frame.load()
    return frame


def _ffmpeg_frames(path: Path, name: str | None = None) -> tuple[Iterator[np.ndarray], float | None]:
    """Every decoded frame, timestamps passed through (ffmpeg's default would drop or repeat frames)."""
    name = name or path.name
    try:
        info = ffmpeg.probe(path)
    except (ffmpeg.FFmpegMissingError, RuntimeError) as err:
        raise error(VIDEO, name, f"cannot be read as a video ({err})", ACCEPTED) from err

    def frames() -> Iterator[np.ndarray]:
        try:
            yield from ffmpeg.decode(path, info)
        except RuntimeError as err:
            raise error(VIDEO, name, f"cannot be decoded ({err})", ACCEPTED) from err

    return frames(), info.fps


# --- API values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedSource:
    """A ``video`` value as a file: ``path``; ``temporary`` if it was decoded from base64 (delete it)."""

    path: Path
    temporary: bool
    name: str


def resolve_source(value: str, directory: str | None = None) -> ResolvedSource:
    """A server path as it is, or base64 video data (optionally a ``data:`` URL) written to a temp file.

    Raises:
        ParamError: neither an existing path nor decodable base64.
    """
    text = value.strip()
    if not text:
        raise error(VIDEO, value, "is empty", ACCEPTED)
    if _is_path(text):
        return ResolvedSource(Path(text), temporary=False, name=Path(text).name)
    data_url = _DATA_URL.match(text)
    if data_url is None and (len(text) < 64 or not _BASE64.match(text[:4096])):
        raise error(VIDEO, value, "is no file or folder on the server, nor base64 video data", ACCEPTED)
    data = decode_base64(text)
    if data is None:
        raise error(VIDEO, value, "is not valid base64", ACCEPTED)
    suffix = sniff_suffix(data)
    handle, name = tempfile.mkstemp(prefix="zs2-input-", suffix=suffix, dir=directory)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
    return ResolvedSource(Path(name), temporary=True, name=f"uploaded{suffix}")


def _is_path(text: str) -> bool:
    try:
        return Path(text).exists()
    except (OSError, ValueError):  # a name too long, a NUL: base64 data, not a path
        return False


def decode_base64(text: str) -> bytes | None:
    """The bytes of base64 data (whitespace ignored, a ``data:`` URL prefix dropped); None if not base64."""
    data_url = _DATA_URL.match(text)
    body = "".join((text[data_url.end() :] if data_url else text).split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def sniff_suffix(data: bytes) -> str:
    """The file suffix of media bytes by their magic number: a GIF, WebP, PNG, JPEG, BMP or WebM, else MP4."""
    if data[:4] == b"\x89PNG":
        return ".png"
    if data[:2] == b"\xff\xd8":
        return ".jpg"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] == b"GIF8":
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    return ".mp4"


__all__ = [
    "ACCEPTED",
    "ParamError",
    "ResolvedSource",
    "VideoFrames",
    "decode_base64",
    "frame_files",
    "natural_key",
    "read_data",
    "read_frames",
    "read_image",
    "resolve_source",
    "sniff_suffix",
]
