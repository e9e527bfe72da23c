"""ffmpeg (the executable imageio-ffmpeg ships) fed and read through pipes, started cheaply.

imageio-ffmpeg's own ``write_frames``/``read_frames`` start ffmpeg with a Python pre-exec hook
(``os.setpgrp``, so that Ctrl+C in the console does not reach it). A pre-exec hook makes CPython
``fork()`` the whole webui, page tables of every loaded model included, instead of ``vfork()``:
measured in a 2 GiB torch process, 82 ms of CPU and 174 ms of wall time per start against 0.5 and
0.6 ms here, once per video written or read. Here ffmpeg starts in a session of its own
(``start_new_session``: the same shelter from Ctrl+C, and ``vfork()`` stays possible), and its
messages go to a temporary file that an error quotes (a pipe that nobody reads could fill up).

The executable is imageio-ffmpeg's (``IMAGEIO_FFMPEG_EXE`` honoured); a missing package or binary
raises :class:`FFmpegMissingError` for callers to explain in their own terms.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

PIXELS = ("-f", "rawvideo", "-pix_fmt", "rgb24")
"""Raw RGB frames, 3 bytes a pixel, rows top to bottom: what goes through the pipes."""
_VIDEO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<details>.*)")
_SIZE = re.compile(r",\s*(?P<width>\d+)x(?P<height>\d+)")
_RATE = re.compile(r"(?P<rate>\d+(?:\.\d+)?)(?P<k>k?) (?:fps|tbr)")
_ROTATION = re.compile(r"rotation of (?P<degrees>-?\d+(?:\.\d+)?) degrees")


class FFmpegMissingError(RuntimeError):
    """imageio-ffmpeg is not installed, or has no usable ffmpeg executable."""


@dataclass(frozen=True)
class StreamInfo:
    """A file's first video stream as ffmpeg describes it: frame size and rate (None if unknown)."""

    width: int
    height: int
    fps: float | None


def executable() -> str:
    """The ffmpeg executable of imageio-ffmpeg, imported on first use."""
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise FFmpegMissingError("the imageio-ffmpeg package is not installed") from err
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise FFmpegMissingError(f"imageio-ffmpeg found no ffmpeg executable ({err})") from err


def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``ffmpeg <args>`` to its end, its messages captured as text (no exception on failure)."""
    command = [executable(), "-hide_banner", *args]
    return subprocess.run(
        command, capture_output=True, encoding="utf-8", errors="replace", check=False, start_new_session=True
    )


class Encoder:
    """ffmpeg encoding raw RGB frames into ``path`` as they are written (a video made while it arrives).

    Write uint8 ``[H, W, 3]`` frames with :meth:`write`, then :meth:`close` (which waits for the
    file and raises if ffmpeg failed) or :meth:`kill` (stops it; the caller removes the file).
    """

    def __init__(
        self, path: Path, *, width: int, height: int, fps: float, output_args: Sequence[str]
    ) -> None:
        self.path, self.shape = path, (height, width, 3)
        size = ("-s", f"{width}x{height}", "-r", f"{fps:.10g}")
        command = [executable(), "-hide_banner", "-v", "error", "-y", *PIXELS, *size, "-i", "-", "-an"]
        self._messages = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close() or kill())
        self._process = subprocess.Popen(
            [*command, *output_args, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._messages,
            start_new_session=True,
        )
        self._open = True

    def write(self, frame: np.ndarray) -> None:
        """Send one frame (its shape must be the encoder's); a frame ffmpeg no longer reads is dropped,
        and :meth:`close` says why it stopped."""
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected uint8 {self.shape}, got {frame.dtype} {frame.shape}")
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.write(memoryview(np.ascontiguousarray(frame).reshape(-1)))

    def close(self) -> None:
        """End the input and wait for ffmpeg to finish the file.

        Raises:
            RuntimeError: ffmpeg failed or wrote nothing (its messages in the text).
        """
        if not self._open:
            return
        self._open = False
        _close(self._process.stdin)
        code = self._process.wait()
        try:
            if code != 0 or self.path.stat().st_size == 0:
                raise RuntimeError(
                    f"ffmpeg could not write {self.path.name} (exit status {code}): {_text(self._messages)}"
                )
        finally:
            self._messages.close()

    def kill(self) -> None:
        """Stop ffmpeg now (the file it leaves is incomplete)."""
        if not self._open:
            return
        self._open = False
        self._process.kill()
        _close(self._process.stdin)
        self._process.wait()
        self._messages.close()


def encode(frames: np.ndarray, path: Path, *, fps: float, output_args: Sequence[str]) -> None:
    """Encode uint8 ``[F, H, W, 3]`` RGB ``frames`` at ``fps`` into ``path`` with ``output_args``.

    Raises:
        RuntimeError: ffmpeg failed or wrote nothing (its messages in the text).
    """
    height, width = frames.shape[1:3]
    encoder = Encoder(path, width=width, height=height, fps=fps, output_args=output_args)
    try:
        _feed(encoder, frames)
    except BaseException:
        encoder.kill()
        raise
    encoder.close()


def _feed(encoder: Encoder, frames: np.ndarray) -> None:
    """Write the frames one at a time (no copy of the whole video)."""
    for frame in frames:
        encoder.write(frame)


def _close(pipe: IO[bytes] | None) -> None:
    with contextlib.suppress(BrokenPipeError):
        if pipe is not None:
            pipe.close()


def describe(path: str | os.PathLike[str]) -> str:
    """ffmpeg's description of a file's streams (with no output named, ffmpeg describes its input
    and stops)."""
    return run(["-i", str(path)]).stderr


def probe(path: Path) -> StreamInfo:
    """Size and frame rate of ``path``'s first video stream, from ffmpeg's description of the input.

    Raises:
        RuntimeError: ffmpeg found no video stream (its messages in the text).
    """
    described = describe(path)
    match = _VIDEO_STREAM.search(described)
    size = _SIZE.search(match["details"]) if match else None
    if match is None or size is None:
        lines = [line.strip() for line in described.splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else "ffmpeg found no video stream")
    rate = _RATE.search(match["details"])
    fps = float(rate["rate"]) * (1000 if rate["k"] else 1) if rate else None
    width, height = int(size["width"]), int(size["height"])
    rotation = _ROTATION.search(described[match.end() :])
    if rotation and round(float(rotation["degrees"])) % 180 == 90:  # ffmpeg turns the frames upright
        width, height = height, width
    return StreamInfo(width, height, fps or None)


def decode(path: Path, info: StreamInfo, input_args: Sequence[str] = ()) -> Iterator[np.ndarray]:
    """Every frame of ``path``'s first video stream as uint8 ``[H, W, 3]`` RGB, in order, timestamps
    passed through (ffmpeg's default frame-rate conversion would drop or repeat frames).

    Raises:
        RuntimeError: ffmpeg failed mid-stream or the stream ended inside a frame.
    """
    frame_bytes = info.width * info.height * 3
    command = [executable(), "-hide_banner", "-v", "error", *input_args, "-i", str(path)]
    command += ["-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", *PIXELS, "-"]
    with tempfile.TemporaryFile() as messages:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=messages, start_new_session=True
        )
        assert process.stdout is not None
        try:
            while data := process.stdout.read(frame_bytes):
                if len(data) < frame_bytes:
                    raise RuntimeError(f"the stream ended inside a frame ({len(data)} of {frame_bytes} B)")
                yield np.frombuffer(data, np.uint8).reshape(info.height, info.width, 3)
            if process.wait() != 0:
                raise RuntimeError(_text(messages) or f"ffmpeg exit status {process.returncode}")
        finally:
            if process.poll() is None:  # the caller stopped early
                process.kill()
            process.wait()
            process.stdout.close()


def _text(messages: IO[bytes]) -> str:
    """What ffmpeg said, its last lines."""
    messages.seek(0)
    lines = messages.read().decode("utf-8", "replace").strip().splitlines()
    return " / ".join(line.strip() for line in lines[-5:])


__all__ = [
    "Encoder",
    "FFmpegMissingError",
    "StreamInfo",
    "decode",
    "describe",
    "encode",
    "executable",
    "probe",
    "run",
]
