"""Encoders for each video format, and the check that a format's encoder is installed.

* MP4 is H.264 (libx264, CRF 18, preset veryfast, yuv420p, ``+faststart``) and WebM is VP9
  (libvpx-vp9, CRF 24, cpu-used 4, yuv420p), both fed raw frames by :mod:`zs2_lib.ffmpeg` (the
  ffmpeg of imageio-ffmpeg, imported only when one of these formats is written). An odd height or
  width is padded by one row or column that repeats the last one. RGB is converted with the BT.709
  matrix, limited range, and the stream is tagged so.
* GIF and WebP are Pillow animations; GIF frames share one 256-colour palette. GIF stores delays in
  centiseconds (``1000 / fps`` ms rounded to 10 ms, at least 20 ms), WebP in milliseconds.
* PNG frames are ``NNNNN.png`` files in a folder.

Each encoder writes ``frames`` (the sequence to store, loop mode applied) to an existing empty file
or folder; :mod:`zs2_lib.files` makes that atomic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image, features

from zs2_lib import ffmpeg

COUNTER_DIGITS = 5
_FFMPEG_PACKAGE = "imageio-ffmpeg"
# Convert RGB with the BT.709 matrix (scale) and tag the stream to match (setparams): without the
# tags, players guess BT.709 for HD and BT.601 for SD sizes, while swscale converts with BT.601.
_BT709_FILTER = (
    "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
    "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
)
# Fast presets: at 512², 16 frames, x264 "veryfast" takes 0.50 s of CPU where "medium" took 1.88 s,
# and VP9 cpu-used 4 takes 2.4 s where 2 took 10.6 s, at the same CRF and about the same size
# (measured in one run on the shared 2-core machine); with a fast UNet the encoder was a visible
# share of the request.
_FFMPEG_CODECS = {
    "mp4": ("libx264", ["-crf", "18", "-preset", "veryfast"]),
    "webm": (
        "libvpx-vp9",
        ["-crf", "24", "-b:v", "0", "-deadline", "good", "-cpu-used", "4", "-row-mt", "1"],
    ),
}
_GIF_MIN_DELAY_MS = 20
_GIF_PALETTE_SAMPLE = 1 << 14  # median cut is ~O(pixels): 2^19 took 2.3 s, 2^14 12 ms, same error
_WEBP_QUALITY = 90
_WEBP_METHOD = 4


class VideoDependencyError(RuntimeError):
    """A package needed for one video format is missing (e.g. imageio-ffmpeg for MP4 and WebM)."""


def require_encoders(formats: Iterable[str]) -> None:
    """Raise VideoDependencyError, saying what to install, if a format's encoder is missing."""
    for fmt in formats:
        if fmt in _FFMPEG_CODECS:
            _require_ffmpeg(fmt)
        elif fmt == "webp" and not features.check("webp"):
            raise VideoDependencyError(
                "webp: this Pillow was built without WebP support; "
                "install a build that has it with `pip install --upgrade Pillow`, or choose gif"
            )


def _require_ffmpeg(fmt: str) -> None:
    """Raise VideoDependencyError, saying what to install, if imageio-ffmpeg's ffmpeg is missing."""
    try:
        ffmpeg.executable()
    except ffmpeg.FFmpegMissingError as err:
        if isinstance(err.__cause__, ImportError):
            raise VideoDependencyError(
                f"{fmt}: writing {fmt.upper()} needs the {_FFMPEG_PACKAGE} package, which is not installed; "
                f"install it with `pip install {_FFMPEG_PACKAGE}`, or choose gif, webp or png"
            ) from err
        raise VideoDependencyError(
            f"{fmt}: {err}; reinstall it with `pip install --force-reinstall {_FFMPEG_PACKAGE}` "
            "or set IMAGEIO_FFMPEG_EXE"
        ) from err


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Pad an odd height or width (frames ``[..., H, W, 3]``) by a row or column repeating the last."""
    pad_h, pad_w = frames.shape[-3] % 2, frames.shape[-2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, [(0, 0)] * (frames.ndim - 3) + [(0, pad_h), (0, pad_w), (0, 0)], mode="edge")


def _write_ffmpeg(
    frames: np.ndarray, path: Path, *, fmt: str, fps: float, loop: str, comment: str | None
) -> None:
    """Encode MP4 (H.264) or WebM (VP9) with ffmpeg."""
    _require_ffmpeg(fmt)
    ffmpeg.encode(pad_to_even(frames), path, fps=fps, output_args=ffmpeg_output_args(fmt, comment))


def ffmpeg_output_args(fmt: str, comment: str | None) -> list[str]:
    """ffmpeg's output arguments for an MP4 or WebM: codec, quality, colours, the MP4's index in front
    (``+faststart``: playable while downloading) and the comment."""
    codec, codec_params = _FFMPEG_CODECS[fmt]
    stream = ["-c:v", codec, "-pix_fmt", "yuv420p", *codec_params, "-vf", _BT709_FILTER]
    return [*stream, *_container_args(fmt, comment)]


def recomment(path: Path, fmt: str, comment: str | None) -> None:
    """Replace the comment of an MP4 or WebM in place; the streams are copied, not re-encoded."""
    changed = path.with_name(f"{path.stem}.comment{path.suffix}")
    result = ffmpeg.run(["-v", "error", "-y", "-i", str(path), "-map", "0", "-c", "copy",
                         "-map_metadata", "-1", *_container_args(fmt, comment), str(changed)])  # fmt: skip
    if result.returncode != 0:
        changed.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg could not set the comment of {path.name}: {result.stderr.strip()}")
    os.replace(changed, path)


def _container_args(fmt: str, comment: str | None) -> list[str]:
    faststart = ["-movflags", "+faststart"] if fmt == "mp4" else []
    return [*faststart, *(["-metadata", f"comment={comment}"] if comment else [])]


def _write_pillow(
    frames: np.ndarray, path: Path, *, fmt: str, fps: float, loop: str, comment: str | None
) -> None:
    """Encode an animated GIF or WebP with Pillow."""
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


def _write_png_dir(
    frames: np.ndarray, path: Path, *, fmt: str, fps: float, loop: str, comment: str | None
) -> None:
    """Write each frame as ``NNNNN.png`` into the existing folder ``path``."""
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(path / f"{index:0{COUNTER_DIGITS}d}.png", format="PNG")


ENCODERS: dict[str, Callable[..., None]] = {
    "mp4": _write_ffmpeg,
    "webm": _write_ffmpeg,
    "gif": _write_pillow,
    "webp": _write_pillow,
    "png": _write_png_dir,
}
"""``encoder(frames, path, *, fmt, fps, loop, comment)`` by format name."""
