"""Video files from generated frames: MP4, WebM, GIF, WebP and folders of PNG frames.

A video is a uint8 array ``[F, H, W, 3]`` (RGB). :func:`write_videos` writes it in several formats
under one base name, all or nothing and atomically (:mod:`zs2_lib.files`), with the encoders of
:mod:`zs2_lib.encoders`; :func:`unique_basename` picks the next free ``<prefix>-00001``-style name.

The loop mode: ``"loop"`` makes GIF and WebP repeat forever; ``"once"`` plays them once;
``"pingpong"`` appends the frames in reverse without repeating the ends and loops. MP4, WebM and
PNG frames cannot carry a loop flag: only ``"pingpong"`` changes them. The optional ``comment``
(the generation infotext) is stored in MP4, WebM and GIF metadata.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from numbers import Real
from pathlib import Path

import numpy as np

from zs2_lib import interpolation
from zs2_lib.encoders import COUNTER_DIGITS, VideoDependencyError, require_encoders
from zs2_lib.files import PathLike, check_free, commit, remove_all, stage, write_text

__all__ = [
    "FORMATS",
    "LOOP_MODES",
    "VideoDependencyError",
    "require_encoders",
    "sequence_for_loop",
    "unique_basename",
    "write_text",
    "write_videos",
]

FORMATS = ("mp4", "webm", "gif", "webp", "png")
LOOP_MODES = ("loop", "once", "pingpong")

_FRAMES_DIR_SUFFIX = "-frames"


def sequence_for_loop(frames: np.ndarray, loop: str) -> np.ndarray:
    """The frames to store for a loop mode.

    Args:
        frames: ``[F, ...]``, the video's frames in order.
        loop: one of :data:`LOOP_MODES`.

    Returns:
        For ``"pingpong"``, the frames followed by the reversed frames without repeating either
        end (``frames + frames[-2:0:-1]``: ``2F - 2`` frames for F ≥ 2, so the video loops
        seamlessly); otherwise ``frames`` itself, unchanged.

    Raises:
        ValueError: ``loop`` is not one of :data:`LOOP_MODES`.
    """
    _check_loop(loop)
    if loop != "pingpong":
        return frames
    return np.concatenate([frames, frames[-2:0:-1]])


def write_videos(
    frames: np.ndarray,
    directory: PathLike,
    basename: str,
    formats: Iterable[str],
    *,
    fps: float,
    loop: str = "loop",
    comment: str | None = None,
    interpolate: int = 1,
    interpolator: str | interpolation.InBetween = "opencv",
    streamed: Mapping[str, Path] | None = None,
    smooth: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write ``frames`` in several formats as ``<directory>/<basename>.<ext>``, all or nothing.

    ``"png"`` writes the folder ``<directory>/<basename>-frames/`` .
    Arguments, encoders and a free PNG folder name are all checked before anything is encoded.
    Every format is then encoded to a temporary sibling and, once all have succeeded, renamed onto
    its final name; if any format fails, every file this call wrote (temporary or renamed) is
    removed and the error re-raised. A failure while renaming, after a final name was already
    replaced, cannot bring back the file that was there before.

    Args:
        frames: uint8 ``[F, H, W, 3]`` RGB frames, F ≥ 1.
        directory: where to write; created if missing.
        basename: the file name without extension, e.g. from :func:`unique_basename`.
        formats: names from :data:`FORMATS` (duplicates are written once; a single string is
            taken as one format).
        fps: frames per second, > 0.
        loop: one of :data:`LOOP_MODES`.
        comment: text stored in the metadata of the formats that support it, or None.
        interpolate: 1 to 8 (the setting: 1, 2, 4): the encoded formats (not ``"png"``) get the frames with
            ``interpolate - 1`` in-between frames after each (:mod:`zs2_lib.interpolation`, the
            last→first transition too with ``"loop"``) at ``interpolate · fps``.
        interpolator: one of :data:`zs2_lib.interpolation.INTERPOLATORS`, or the function
            :func:`zs2_lib.interpolation.in_betweens` gives for one (RIFE with its weights' folders).
        streamed: formats already encoded while the frames arrived (:mod:`zs2_lib.video_stream`):
            ``{format: temporary file}`` in ``directory``, committed (or removed) with the others.
        smooth: the interpolated frames, when already made (before the loop mode is applied).

    Returns:
        ``{format: path}`` in the order the formats were requested.

    Raises:
        ValueError: an argument is invalid (the message names it and the accepted values).
        TypeError: ``frames`` is not a numpy array or ``comment`` is not a string.
        FileExistsError: ``"png"`` was requested and its folder already exists.
        VideoDependencyError: a requested format's encoder (or OpenCV) is not installed.
        ParamError: the interpolator cannot run here (RIFE without weights).
    """
    streamed = dict(streamed or {})
    try:
        directory = Path(directory)
        frames = _check_frames(frames)
        fps = _check_fps(fps)
        _check_loop(loop)
        _check_comment(comment)
        _check_name(basename, "basename")
        targets = {fmt: _target(directory, basename, fmt) for fmt in _check_formats(formats)}
        require_encoders(set(targets) - set(streamed))
        if "png" in targets:
            check_free(targets["png"])
        directory.mkdir(parents=True, exist_ok=True)
        sequence = sequence_for_loop(frames, loop)
        rest = [fmt for fmt in targets if fmt not in streamed]
        if interpolate != 1 and any(fmt != "png" for fmt in rest):
            if smooth is None:
                smooth = interpolation.interpolate(frames, interpolate, loop=loop, method=interpolator)
            smooth = sequence_for_loop(smooth, loop)
        else:
            smooth = sequence

        def encode(fmt: str) -> Path:
            shown, rate = (sequence, fps) if fmt == "png" else (smooth, fps * interpolate)
            return stage(shown, targets[fmt], fmt, fps=rate, loop=loop, comment=comment)

        staged = {**streamed, **_stage_all(rest, encode)}
    except BaseException:
        remove_all(streamed.values())
        raise
    committed: list[Path] = []
    try:
        for fmt, target in targets.items():
            commit(staged[fmt], target)
            committed.append(target)
    except BaseException:
        remove_all([*committed, *staged.values()])
        raise
    return targets


def _stage_all(formats: list[str], encode: Callable[[str], Path]) -> dict[str, Path]:
    """``{format: encode(format)}``, the formats encoded side by side (ffmpeg runs in a process of
    its own, and Pillow and numpy release the GIL for most of their work); if any fails, every
    staged file is removed and the first failure re-raised."""
    if len(formats) <= 1:
        return {fmt: encode(fmt) for fmt in formats}
    with ThreadPoolExecutor(max_workers=len(formats), thread_name_prefix="zs2-encode") as pool:
        futures = {fmt: pool.submit(encode, fmt) for fmt in formats}
        wait(futures.values())
    staged = {fmt: future.result() for fmt, future in futures.items() if future.exception() is None}
    failure = next((f.exception() for f in futures.values() if f.exception() is not None), None)
    if failure is not None:
        remove_all(staged.values())
        raise failure
    return staged


def unique_basename(directory: PathLike, prefix: str) -> str:
    """The next free base name ``<prefix>-NNNNN`` (5-digit counter, from 00001) in ``directory``.

    The counter is one more than the largest already used by an entry of ``directory`` whose name
    starts with ``<prefix>-<counter>`` followed by ``.`` or ``-frames``, so no file or folder
    starting with the returned name plus ``.`` or ``-frames`` exists. Gaps left by deleted videos
    are not reused. A missing directory counts as empty.

    Args:
        directory: the output directory.
        prefix: the name's fixed part, e.g. ``"zs2"``; a file name, without separators.

    Returns:
        The base name, e.g. ``"zs2-00001"``.

    Raises:
        ValueError: ``prefix`` is empty or contains a path separator.
    """
    _check_name(prefix, "prefix")
    pattern = re.compile(rf"{re.escape(prefix)}-(\d{{{COUNTER_DIGITS},}})(?:\.|{_FRAMES_DIR_SUFFIX})")
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        names = []
    used = [int(match.group(1)) for name in names if (match := pattern.match(name))]
    return f"{prefix}-{max(used, default=0) + 1:0{COUNTER_DIGITS}d}"


# --- validation ---------------------------------------------------------------------------------


def _check_frames(frames: np.ndarray) -> np.ndarray:
    """``frames`` as a C-contiguous array once it is known to be uint8 ``[F ≥ 1, H ≥ 1, W ≥ 1, 3]``."""
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames: expected a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames: expected dtype uint8 (values 0-255), got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise ValueError(
            f"frames: expected shape [F, H, W, 3] with F, H, W ≥ 1 (RGB), got {tuple(frames.shape)}"
        )
    return np.ascontiguousarray(frames)


def _check_fps(fps: float) -> float:
    """``fps`` as a float once it is known to be a finite number > 0."""
    if isinstance(fps, bool) or not isinstance(fps, Real) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: expected a finite number > 0, got {fps!r}")
    return float(fps)


def _check_loop(loop: str) -> None:
    """Raise ValueError unless ``loop`` is one of LOOP_MODES."""
    if loop not in LOOP_MODES:
        raise ValueError(f"loop: {loop!r} is not one of {', '.join(LOOP_MODES)}")


def _check_comment(comment: str | None) -> None:
    """Raise TypeError unless ``comment`` is a string or None."""
    if comment is not None and not isinstance(comment, str):
        raise TypeError(f"comment: expected a string or None, got {type(comment).__name__}")


def _check_name(name: str, argument: str) -> None:
    """Raise ValueError unless ``name`` is a plain, non-empty file name."""
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    if not isinstance(name, str) or name in ("", ".", "..") or any(s in name for s in separators):
        raise ValueError(f"{argument}: expected a non-empty file name without path separators, got {name!r}")


def _check_formats(formats: Iterable[str]) -> list[str]:
    """The requested formats, deduplicated in order, once each is known to be in FORMATS."""
    requested = [formats] if isinstance(formats, str) else list(formats)
    for fmt in requested:
        if fmt not in FORMATS:
            raise ValueError(f"formats: {fmt!r} is not one of {', '.join(FORMATS)}")
    if not requested:
        raise ValueError(f"formats: expected at least one of {', '.join(FORMATS)}, got none")
    return list(dict.fromkeys(requested))


def _target(directory: Path, basename: str, fmt: str) -> Path:
    """Where write_videos puts format ``fmt``."""
    if fmt == "png":
        return directory / f"{basename}{_FRAMES_DIR_SUFFIX}"
    return directory / f"{basename}.{fmt}"
