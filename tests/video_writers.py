"""Single-format video writers for the tests, on top of the extension's encoders and atomic writes.

The extension only writes several formats at once (:func:`zs2_lib.video.write_videos`); these write
one file at any path, or one PNG folder, the same way, so each encoder can be tested alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zs2_lib.encoders import require_encoders
from zs2_lib.files import PathLike, check_free, commit, stage
from zs2_lib.video import _check_comment, _check_fps, _check_frames, _check_loop, sequence_for_loop

_FILE_FORMATS = ("mp4", "webm", "gif", "webp")


def write_video(
    frames: np.ndarray,
    path: PathLike,
    *,
    fps: float,
    loop: str = "loop",
    comment: str | None = None,
) -> Path:
    """Write ``frames`` to one video file, atomically; the format comes from the suffix.

    The parent directory is created if missing and an existing file at ``path`` is replaced.
    See the module docstring for codecs, padding of odd sizes, frame delays and loop flags.

    Args:
        frames: uint8 ``[F, H, W, 3]`` RGB frames, F ≥ 1.
        path: the file to write; its suffix (``.mp4``, ``.webm``, ``.gif`` or ``.webp``, any
            case) selects the format.
        fps: frames per second, > 0.
        loop: one of ``LOOP_MODES``.
        comment: text stored in the file's metadata (MP4, WebM, GIF), or None.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: an argument is invalid (the message names it and the accepted values).
        TypeError: ``frames`` is not a numpy array or ``comment`` is not a string.
        VideoDependencyError: the format's encoder is not installed.
    """
    path = Path(path)
    fmt = _format_of(path)
    frames = _check_frames(frames)
    fps = _check_fps(fps)
    _check_loop(loop)
    _check_comment(comment)
    require_encoders([fmt])
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = stage(sequence_for_loop(frames, loop), path, fmt, fps=fps, loop=loop, comment=comment)
    commit(staged, path)
    return path


def write_png_frames(frames: np.ndarray, directory: PathLike, *, loop: str = "once") -> Path:
    """Write ``frames`` as ``00000.png``, ``00001.png``, … into a new directory, atomically.

    The frames go to a hidden temporary sibling directory that is renamed to ``directory`` once
    all are written, and removed if anything fails. Parent directories are created if missing.

    Args:
        frames: uint8 ``[F, H, W, 3]`` RGB frames, F ≥ 1.
        directory: the directory to create; it must not exist yet.
        loop: one of ``LOOP_MODES``; only ``"pingpong"`` changes what is written (a folder of
            frames has no loop flag).

    Returns:
        ``directory`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``directory`` already exists.
        ValueError: ``frames`` or ``loop`` is invalid.
        TypeError: ``frames`` is not a numpy array.
    """
    directory = Path(directory)
    frames = _check_frames(frames)
    _check_loop(loop)
    check_free(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staged = stage(sequence_for_loop(frames, loop), directory, "png", fps=1.0, loop=loop, comment=None)
    commit(staged, directory)
    return directory


def _format_of(path: Path) -> str:
    """The file format named by ``path``'s suffix."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _FILE_FORMATS:
        accepted = ", ".join(f".{ext}" for ext in _FILE_FORMATS)
        raise ValueError(
            f"path: suffix {path.suffix!r} is not one of {accepted} (PNG frames: use write_png_frames)"
        )
    return fmt
