"""A video whose MP4 and WebM are encoded while its frames arrive, off the sampling thread.

Written at the end of a run, the videos' encoding adds to the run's time (16 frames of 512²: 0.5 s
of CPU for x264, 2.4 s for VP9), a visible share of it next to a fast UNet or a GPU. A
:class:`VideoStream` takes each frame as the webui finishes it (:meth:`VideoStream.add` only hands
it over) and a worker thread feeds it, with its in-between frames when interpolating, to one ffmpeg
per streamed format, which encodes while the webui decodes, saves and samples the next frames and
chunks. :meth:`VideoStream.finish` then adds what needs the whole video (the loop's tail; ffmpeg
puts the MP4's index in front) and writes the formats that take every frame at once (GIF's shared
palette, WebP, PNG frames) with :func:`zs2_lib.video.write_videos`, all or nothing as before: the
files appear under their names only when every format has succeeded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from zs2_lib import encoders, ffmpeg, interpolation
from zs2_lib.files import remove_all, temporary_sibling
from zs2_lib.video import write_videos

STREAMED = ("mp4", "webm")
"""Formats encoded as the frames arrive; the others need every frame at once."""
_END = object()


class VideoStream:
    """One video's MP4/WebM, encoded frame by frame in a worker thread while the run goes on.

    Args:
        directory: where the video will be written (the temporaries are hidden siblings there).
        formats: the video's formats; those in :data:`STREAMED` are encoded as frames arrive.
        fps, loop, interpolate, interpolator: as for :func:`zs2_lib.video.write_videos`.
        comment: the comment the video will most likely get, stored from the start (a different
            one at :meth:`finish` costs a stream copy of each file).
    """

    def __init__(
        self,
        directory: Path,
        formats: Iterable[str],
        *,
        fps: float,
        loop: str,
        interpolate: int = 1,
        interpolator: str | interpolation.InBetween = "opencv",
        comment: str | None = None,
    ) -> None:
        self.directory, self.fps, self.loop, self.comment = Path(directory), fps, loop, comment
        self.factor, self.interpolator = interpolate, interpolator
        self.formats = [fmt for fmt in dict.fromkeys(formats) if fmt in STREAMED]
        self.count = 0  # frames handed over
        self.recommented = False  # finish() got another comment than the one the files were started with
        self._times = interpolation.in_between_times(interpolate)
        self._between: interpolation.InBetween | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._encoders: dict[str, ffmpeg.Encoder] = {}
        self._first: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._smooth: list[np.ndarray] = []  # sampled and in-between frames, kept for the loop's tail
        self._error: BaseException | None = None
        self._cancelled = False

    def add(self, frame: np.ndarray) -> None:
        """Hand over the next frame, uint8 ``[H, W, 3]`` RGB (not changed afterwards); never blocks."""
        if not self.formats:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="zs2-video-stream", daemon=True)
            self._thread.start()
        self.count += 1
        self._queue.put(frame)

    def _work(self) -> None:
        while (frame := self._queue.get()) is not _END:
            if self._error is None and not self._cancelled:
                try:
                    self._encode(frame)
                except BaseException as error:  # finish() falls back to encoding from all frames
                    self._error = error

    def _encode(self, frame: np.ndarray) -> None:
        if self._first is None:
            self._first = frame
            self._start(encoders.pad_to_even(frame).shape)
        elif self.factor > 1:
            for between in self._frames_between(self._previous, frame):
                self._write(between)
        self._write(frame)
        self._previous = frame

    def _start(self, shape: tuple[int, ...]) -> None:
        """One ffmpeg per streamed format for frames of ``shape`` (padded to even), writing to a hidden
        temporary in the video's directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        height, width = shape[:2]
        for fmt in self.formats:
            path = temporary_sibling(self.directory / f"zs2-stream.{fmt}", folder=False)
            try:
                self._encoders[fmt] = ffmpeg.Encoder(
                    path,
                    width=width,
                    height=height,
                    fps=self.fps * self.factor,
                    output_args=encoders.ffmpeg_output_args(fmt, self.comment),
                )
            except BaseException:
                remove_all([path])
                raise

    def _frames_between(self, a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
        if self._between is None:
            name = self.interpolator
            self._between = interpolation.in_betweens(name) if isinstance(name, str) else name
        return interpolation.frames_between(self._between, a, b, self._times)

    def _write(self, frame: np.ndarray) -> None:
        padded = encoders.pad_to_even(frame)
        for encoder in self._encoders.values():
            encoder.write(padded)
        if self.loop == "pingpong" or self.factor > 1:
            self._smooth.append(frame)

    def finish(
        self, frames: np.ndarray, basename: str, formats: Iterable[str], comment: str | None
    ) -> dict[str, Path]:
        """Write the video under ``basename`` in every format: the streamed ones completed, the
        others from ``frames`` (the frames handed over, as one array), all or nothing.

        A stream that failed, or that saw other frames than ``frames``, is dropped and its formats
        are encoded from ``frames`` like the rest.
        """
        self._stop()
        streamed: dict[str, Path] = {}
        smooth = None
        if self._encoders and self._error is None and self.count == len(frames):
            try:
                streamed = self._complete(comment)
            except Exception:
                self.abort()
                streamed = {}
            else:
                formats = list(formats)
                rest = [fmt for fmt in formats if fmt not in streamed and fmt != "png"]
                smooth = np.stack(self._interpolated(frames)) if self.factor > 1 and rest else None
            self._smooth = []
        else:
            self.abort()
        return write_videos(
            frames,
            self.directory,
            basename,
            formats,
            fps=self.fps,
            loop=self.loop,
            comment=comment,
            interpolate=self.factor,
            interpolator=self.interpolator,
            streamed=streamed,
            smooth=smooth,
        )

    def _interpolated(self, frames: np.ndarray) -> list[np.ndarray]:
        """The interpolated frames before the loop mode (what :func:`interpolation.interpolate` gives)."""
        count = interpolation.frame_count(len(frames), self.factor, self.loop)
        return self._smooth[:count]

    def _complete(self, comment: str | None) -> dict[str, Path]:
        """The loop's tail, then each streamed file closed (and given its comment if it changed)."""
        if self.loop == "loop" and self.factor > 1 and self.count > 1:
            for between in self._frames_between(self._previous, self._first):
                self._write(between)
        if self.loop == "pingpong":
            for frame in self._smooth[-2:0:-1]:
                self._write(frame)
        files = {}
        for fmt, encoder in self._encoders.items():
            encoder.close()
            if comment != self.comment:
                encoders.recomment(encoder.path, fmt, comment)
                self.recommented = True
            files[fmt] = encoder.path
        self._encoders = {}
        return files

    def _stop(self) -> None:
        """Let the worker finish the frames handed over, then end it."""
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
            self._thread = None

    def abort(self) -> None:
        """Stop everything and remove what the stream wrote (safe to call at any time, and again):
        the worker drops the frames still queued, so this waits for one frame at most."""
        self._cancelled = True
        self._stop()
        for encoder in self._encoders.values():
            encoder.kill()
        remove_all(encoder.path for encoder in self._encoders.values())
        self._encoders = {}
        self._smooth = []
