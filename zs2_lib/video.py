"""Video files from generated frames: MP4, WebM, GIF, WebP and folders of PNG frames.

A video is a uint8 array ``[F, H, W, 3]`` (RGB). :func:`write_video` writes one file whose format
comes from the suffix, :func:`write_png_frames` a folder of numbered PNGs, and :func:`write_videos`
several formats under one base name, all or nothing. :func:`unique_basename` picks the next free
``<prefix>-00001``-style base name.

Every write is atomic: the data goes to a hidden temporary sibling (``.<stem>.tmp-<pid>-<hex>``,
same directory, same suffix so encoders still pick the format from it) that is renamed onto the
final name only when complete. If anything fails, KeyboardInterrupt included, the temporary is
removed and the error re-raised, so a failure never leaves a partial or temporary file behind.

Encoders:

* MP4 is H.264 (libx264, CRF 18, yuv420p, ``+faststart``) and WebM is VP9 (libvpx-vp9, CRF 24,
  yuv420p), both through ``imageio_ffmpeg.write_frames``. yuv420p needs even sizes, so an odd
  height or width is padded by one row or column that repeats the last one (the file is then one
  pixel taller or wider than the frames). RGB is converted with the BT.709 matrix, limited range,
  and the stream is tagged so, which players decode without a colour shift. ``imageio_ffmpeg`` is
  imported only when one of these formats is written; if it is missing, :class:`VideoDependencyError`
  says how to install it and every other format still works.
* GIF and WebP are Pillow animations. GIF frames share one 256-colour palette (median cut over
  all frames, no dithering), which keeps colours steady from frame to frame. GIF stores delays in
  centiseconds, so its frame delay is ``1000 / fps`` ms rounded to 10 ms and at least 20 ms
  (browsers play shorter delays at 100 ms); WebP's is ``1000 / fps`` ms rounded. Both encoders
  merge a frame identical to the one before it into one longer frame, so a still video reads
  back with fewer frames (same total duration).
* The loop mode: ``"loop"`` makes GIF and WebP repeat forever (loop count 0); ``"once"`` plays
  them once (GIF: no NETSCAPE loop extension at all, since any loop count there means "repeat";
  WebP: loop count 1); ``"pingpong"`` appends the frames in reverse without repeating the ends
  (see :func:`sequence_for_loop`) and loops. MP4, WebM and PNG frames cannot carry a loop flag:
  only ``"pingpong"`` changes them.
* The optional ``comment`` (e.g. the generation infotext) is stored as the ``comment`` metadata
  tag in MP4 and WebM and as the comment extension in GIF; WebP and PNG frames do not store it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from numbers import Real
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, features

FORMATS = ("mp4", "webm", "gif", "webp", "png")
LOOP_MODES = ("loop", "once", "pingpong")

_PathLike = str | os.PathLike[str]

_FILE_FORMATS = ("mp4", "webm", "gif", "webp")
_FRAMES_DIR_SUFFIX = "-frames"
_COUNTER_DIGITS = 5
_FFMPEG_PACKAGE = "imageio-ffmpeg"
_FFMPEG_LOG_LEVEL = "error"
# Convert RGB with the BT.709 matrix (scale) and tag the stream to match (setparams): without the
# tags, players guess BT.709 for HD and BT.601 for SD sizes, while swscale converts with BT.601.
_BT709_FILTER = (
    "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
    "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
)
_FFMPEG_CODECS = {
    "mp4": ("libx264", ["-crf", "18", "-preset", "medium", "-movflags", "+faststart"]),
    "webm": (
        "libvpx-vp9",
        ["-crf", "24", "-b:v", "0", "-deadline", "good", "-cpu-used", "2", "-row-mt", "1"],
    ),
}
_GIF_MIN_DELAY_MS = 20
_GIF_PALETTE_SAMPLE = 1 << 19
_WEBP_QUALITY = 90
_WEBP_METHOD = 4
_TEMP_ATTEMPTS = 100


class VideoDependencyError(RuntimeError):
    """A package needed for one video format is missing (e.g. imageio-ffmpeg for MP4 and WebM)."""


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


def write_video(
    frames: np.ndarray,
    path: _PathLike,
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
        loop: one of :data:`LOOP_MODES`.
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
    staged = _stage(sequence_for_loop(frames, loop), path, fmt, fps=fps, loop=loop, comment=comment)
    _commit(staged, path)
    return path


def write_png_frames(frames: np.ndarray, directory: _PathLike, *, loop: str = "once") -> Path:
    """Write ``frames`` as ``00000.png``, ``00001.png``, … into a new directory, atomically.

    The frames go to a hidden temporary sibling directory that is renamed to ``directory`` once
    all are written, and removed if anything fails. Parent directories are created if missing.

    Args:
        frames: uint8 ``[F, H, W, 3]`` RGB frames, F ≥ 1.
        directory: the directory to create; it must not exist yet.
        loop: one of :data:`LOOP_MODES`; only ``"pingpong"`` changes what is written (a folder of
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
    _check_free(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staged = _stage(sequence_for_loop(frames, loop), directory, "png", fps=1.0, loop=loop, comment=None)
    _commit(staged, directory)
    return directory


def write_videos(
    frames: np.ndarray,
    directory: _PathLike,
    basename: str,
    formats: Iterable[str],
    *,
    fps: float,
    loop: str = "loop",
    comment: str | None = None,
) -> dict[str, Path]:
    """Write ``frames`` in several formats as ``<directory>/<basename>.<ext>``, all or nothing.

    ``"png"`` writes the folder ``<directory>/<basename>-frames/`` (see :func:`write_png_frames`).
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

    Returns:
        ``{format: path}`` in the order the formats were requested.

    Raises:
        ValueError: an argument is invalid (the message names it and the accepted values).
        TypeError: ``frames`` is not a numpy array or ``comment`` is not a string.
        FileExistsError: ``"png"`` was requested and its folder already exists.
        VideoDependencyError: a requested format's encoder is not installed.
    """
    directory = Path(directory)
    frames = _check_frames(frames)
    fps = _check_fps(fps)
    _check_loop(loop)
    _check_comment(comment)
    _check_name(basename, "basename")
    targets = {fmt: _target(directory, basename, fmt) for fmt in _check_formats(formats)}
    require_encoders(targets)
    if "png" in targets:
        _check_free(targets["png"])
    directory.mkdir(parents=True, exist_ok=True)

    sequence = sequence_for_loop(frames, loop)
    staged: dict[str, Path] = {}
    try:
        for fmt, target in targets.items():
            staged[fmt] = _stage(sequence, target, fmt, fps=fps, loop=loop, comment=comment)
    except BaseException:
        _remove_all(staged.values())
        raise
    committed: list[Path] = []
    try:
        for fmt, target in targets.items():
            _commit(staged[fmt], target)
            committed.append(target)
    except BaseException:
        _remove_all([*committed, *staged.values()])
        raise
    return targets


def write_text(path: _PathLike, text: str) -> Path:
    """Write a small text file (e.g. a video's infotext) atomically, like the videos; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = _temp_sibling(path, folder=False)
    try:
        staged.write_text(text, encoding="utf-8")
    except BaseException:
        _remove(staged)
        raise
    _commit(staged, path)
    return path


def unique_basename(directory: _PathLike, prefix: str) -> str:
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
    pattern = re.compile(rf"{re.escape(prefix)}-(\d{{{_COUNTER_DIGITS},}})(?:\.|{_FRAMES_DIR_SUFFIX})")
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        names = []
    used = [int(match.group(1)) for name in names if (match := pattern.match(name))]
    return f"{prefix}-{max(used, default=0) + 1:0{_COUNTER_DIGITS}d}"


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


def _check_free(path: Path) -> None:
    """Raise FileExistsError if ``path`` exists."""
    if path.exists():
        raise FileExistsError(f"{path}: already exists; PNG frames are only written to a new directory")


def _format_of(path: Path) -> str:
    """The file format named by ``path``'s suffix."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _FILE_FORMATS:
        accepted = ", ".join(f".{ext}" for ext in _FILE_FORMATS)
        raise ValueError(
            f"path: suffix {path.suffix!r} is not one of {accepted} (PNG frames: use write_png_frames)"
        )
    return fmt


def _target(directory: Path, basename: str, fmt: str) -> Path:
    """Where write_videos puts format ``fmt``."""
    if fmt == "png":
        return directory / f"{basename}{_FRAMES_DIR_SUFFIX}"
    return directory / f"{basename}.{fmt}"


# --- dependencies -------------------------------------------------------------------------------


def require_encoders(formats: Iterable[str]) -> None:
    """Raise VideoDependencyError, saying what to install, if a format's encoder is missing."""
    for fmt in formats:
        if fmt in _FFMPEG_CODECS:
            _imageio_ffmpeg(fmt)
        elif fmt == "webp" and not features.check("webp"):
            raise VideoDependencyError(
                "webp: this Pillow was built without WebP support; "
                "install a build that has it with `pip install --upgrade Pillow`, or choose gif"
            )


def _imageio_ffmpeg(fmt: str) -> ModuleType:
    """The imageio_ffmpeg module, with a usable ffmpeg executable, imported on first use."""
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise VideoDependencyError(
            f"{fmt}: writing {fmt.upper()} needs the {_FFMPEG_PACKAGE} package, which is not installed; "
            f"install it with `pip install {_FFMPEG_PACKAGE}`, or choose gif, webp or png"
        ) from err
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise VideoDependencyError(
            f"{fmt}: {_FFMPEG_PACKAGE} found no ffmpeg executable ({err}); reinstall it with "
            f"`pip install --force-reinstall {_FFMPEG_PACKAGE}` or set IMAGEIO_FFMPEG_EXE"
        ) from err
    return imageio_ffmpeg


# --- atomic staging -----------------------------------------------------------------------------


def _stage(frames: np.ndarray, target: Path, fmt: str, *, fps: float, loop: str, comment: str | None) -> Path:
    """Encode ``frames`` to a new temporary sibling of ``target`` and return it.

    ``frames`` is already the sequence to store (loop mode applied). On any failure the
    temporary is removed and the error re-raised.
    """
    staged = _temp_sibling(target, folder=fmt == "png")
    try:
        _ENCODERS[fmt](frames, staged, fps=fps, loop=loop, comment=comment)
    except BaseException:
        _remove(staged)
        raise
    return staged


def _commit(staged: Path, target: Path) -> None:
    """Move a staged file or folder onto ``target``; remove it if that fails."""
    try:
        if staged.is_dir():
            _check_free(target)
            os.rename(staged, target)
        else:
            os.replace(staged, target)
    except BaseException:
        _remove(staged)
        raise


def _temp_sibling(target: Path, *, folder: bool) -> Path:
    """Create an empty file (or folder) that is a hidden, unused sibling of ``target``.

    The name is ``.<stem>.tmp-<pid>-<hex><suffix>`` (a folder: ``.<name>.tmp-<pid>-<hex>``): hidden,
    in the same directory so the final rename stays on one file system, and with ``target``'s
    suffix so encoders that choose the format from the name still do. It is created exclusively,
    so two writers never share one.
    """
    for _ in range(_TEMP_ATTEMPTS):
        tag = f"tmp-{os.getpid()}-{secrets.token_hex(4)}"
        if folder:
            candidate = target.with_name(f".{target.name}.{tag}")
        else:
            candidate = target.with_name(f".{target.stem}.{tag}{target.suffix}")
        try:
            if folder:
                candidate.mkdir()
            else:
                _create_empty_file(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{target}: found no free temporary name after {_TEMP_ATTEMPTS} tries")


def _create_empty_file(path: Path) -> None:
    """Create ``path`` as an empty file, failing if it exists (permissions follow the umask)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _remove(path: Path) -> None:
    """Delete a file or folder tree if it exists, ignoring errors (used while unwinding)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _remove_all(paths: Iterable[Path]) -> None:
    """Delete each of ``paths`` (see _remove)."""
    for path in paths:
        _remove(path)


# --- encoders -----------------------------------------------------------------------------------


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by one row or column that repeats the last one."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _write_ffmpeg(frames: np.ndarray, path: Path, *, fps: float, loop: str, comment: str | None) -> None:
    """Encode MP4 (H.264) or WebM (VP9), chosen by ``path``'s suffix, with imageio-ffmpeg."""
    fmt = _format_of(path)
    imageio_ffmpeg = _imageio_ffmpeg(fmt)
    codec, codec_params = _FFMPEG_CODECS[fmt]
    frames = np.ascontiguousarray(_pad_to_even(frames))
    height, width = frames.shape[1:3]
    output_params = [*codec_params, "-vf", _BT709_FILTER]
    if comment:
        output_params += ["-metadata", f"comment={comment}"]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (int(width), int(height)),
        fps=fps,
        codec=codec,
        quality=None,
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        ffmpeg_log_level=_FFMPEG_LOG_LEVEL,
        output_params=output_params,
    )
    writer.send(None)
    try:
        for frame in frames:
            writer.send(frame)
    finally:
        writer.close()  # ffmpeg finishes the file (or dies) before this returns
    if path.stat().st_size == 0:
        raise RuntimeError(f"{fmt}: ffmpeg wrote nothing to {path}; see its messages above")


def _write_pillow(frames: np.ndarray, path: Path, *, fps: float, loop: str, comment: str | None) -> None:
    """Encode an animated GIF or WebP, chosen by ``path``'s suffix, with Pillow."""
    fmt = _format_of(path)
    images = _gif_frames(frames) if fmt == "gif" else [Image.fromarray(frame) for frame in frames]
    options: dict[str, object] = {"save_all": True, "append_images": images[1:]}
    if fmt == "gif":
        options["duration"] = max(_GIF_MIN_DELAY_MS, 10 * round(100 / fps))
        if loop != "once":  # no NETSCAPE extension at all: the GIF plays once
            options["loop"] = 0
        if comment:
            options["comment"] = comment
    else:
        options.update(
            duration=max(1, round(1000 / fps)),
            loop=1 if loop == "once" else 0,  # WebP: 0 repeats forever, N plays N times
            quality=_WEBP_QUALITY,
            method=_WEBP_METHOD,
            lossless=False,
        )
    images[0].save(path, format=fmt.upper(), **options)


def _gif_frames(frames: np.ndarray) -> list[Image.Image]:
    """The frames as palette images sharing one 256-colour palette, without dithering.

    The palette is Pillow's median cut over an even subsample of all frames (at most
    ``_GIF_PALETTE_SAMPLE`` pixels). One palette keeps still regions from shimmering as per-frame
    palettes would, lets the GIF encoder skip unchanged pixels, and is about 20× faster than
    Pillow's own per-frame quantisation; dithering is left out because its noise flickers from
    frame to frame and triples the file size.
    """
    count, height, width = frames.shape[:3]
    step = max(1, math.ceil(math.sqrt(count * height * width / _GIF_PALETTE_SAMPLE)))
    sample = frames[:, ::step, ::step]
    mosaic = Image.fromarray(np.ascontiguousarray(sample.reshape(-1, sample.shape[2], 3)))
    palette = mosaic.quantize(256, method=Image.Quantize.MEDIANCUT)
    return [Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]


def _write_png_dir(frames: np.ndarray, path: Path, *, fps: float, loop: str, comment: str | None) -> None:
    """Write each frame as ``NNNNN.png`` into the existing folder ``path``."""
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"{index:0{_COUNTER_DIGITS}d}.png", format="PNG")


_ENCODERS: dict[str, Callable[..., None]] = {
    "mp4": _write_ffmpeg,
    "webm": _write_ffmpeg,
    "gif": _write_pillow,
    "webp": _write_pillow,
    "png": _write_png_dir,
}
