"""Where a run's videos go, and their MP4/WebM encoded while the run goes on.

The folder is fixed when the run starts: ``<outpath_samples>/zs2``, or, for a request that asked
not to save images, a temporary folder that goes with the run (API clients still get the files'
data). Each frame a video keeps (:class:`~zs2_lib.webui.features.frames.Frames` decides) is handed
to the video's :class:`~zs2_lib.video_stream.VideoStream` as the webui finishes it, so the encoders
work while the webui decodes, saves and samples on; :mod:`zs2_lib.webui.output` completes them.
On every other path (exception, reload) the undo stack stops the streams and removes their files.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zs2_lib.encoders import VideoDependencyError
from zs2_lib.interpolation import InBetween, factor_for, in_betweens
from zs2_lib.names import OUTPUT_FOLDER, console
from zs2_lib.values import ParamError
from zs2_lib.video_stream import VideoStream
from zs2_lib.webui.features.frames import Frames
from zs2_lib.webui.run import Feature, Run


def video_directory(p: Any) -> Path | None:
    """``<outpath_samples>/zs2``, or None when the request asked not to save images."""
    if getattr(p, "do_not_save_samples", False):
        return None
    return Path(p.outpath_samples) / OUTPUT_FOLDER


class Encoding(Feature):
    """The run's video folder, and one stream per video fed with the frames the video keeps."""

    def __init__(self) -> None:
        self.directory = Path()
        self.temporary = False
        self.streams: dict[int, VideoStream] = {}
        self._between: InBetween | None = None

    def install(self, run: Run) -> None:
        directory = video_directory(run.p)
        self.temporary = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="zs2-")) if directory is None else directory
        run.undo.callback(self._close)

    def frame(self, run: Run, image: Any) -> None:
        video, _, _ = run.plan.locate(run.p.iteration)
        kept = run.feature(Frames).videos.get(video)
        if not kept or kept[-1] is not image:
            return  # left out of the video
        stream = self.streams.get(video)
        if stream is None:
            stream = self.streams[video] = self._stream(run, video)
        stream.add(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))

    def _stream(self, run: Run, video: int) -> VideoStream:
        params = run.params
        factor = factor_for(params.fps, params.interpolate, params.target_fps)
        try:
            interpolator = self.in_between(run) if factor != 1 else params.interpolator
        except (ParamError, VideoDependencyError):  # checked before sampling; if it fails now, the
            interpolator = params.interpolator  # stream fails, and writing the video reports why
        return VideoStream(
            self.directory,
            params.formats,
            fps=params.fps,
            loop=params.loop,
            interpolate=factor,
            interpolator=interpolator,
            comment=run.host.infotext(run.p, run.plan.first_image(video)),  # as output.py will give it
        )

    def in_between(self, run: Run) -> InBetween:
        """The run's in-between function, made once (RIFE loads its network once per weights file)."""
        if self._between is None:
            host = run.host
            self._between = in_betweens(run.params.interpolator, host.interpolator_folders(), host.device())
        return self._between

    def write(self, run: Run, video: int, frames: np.ndarray, basename: str, comment: str) -> dict[str, Path]:
        """Write one video in every format under ``basename`` (see :func:`zs2_lib.video.write_videos`):
        what its stream encoded, and the rest. Raises what writing raises (the caller reports it)."""
        stream = self.streams.pop(video, None) or self._stream(run, video)
        try:
            if stream.factor != 1:
                stream.interpolator = self.in_between(run)  # raises here if the interpolator cannot run
            files = stream.finish(frames, basename, run.params.formats, comment)
        except BaseException:
            stream.abort()
            raise
        if stream.recommented:
            console(f"video {video}: infotext changed after its first frame; MP4/WebM copied to take it")
        return files

    def _close(self) -> None:
        for stream in self.streams.values():
            stream.abort()
        self.streams.clear()
        if self.temporary:
            shutil.rmtree(self.directory, ignore_errors=True)
