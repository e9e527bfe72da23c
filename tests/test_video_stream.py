"""Tests for zs2_lib.video_stream: MP4/WebM encoded while frames arrive equal the files written at the end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_video import ffmetadata, listing, make_frames, read_ffmpeg, read_pillow
from zs2_lib import ffmpeg, files
from zs2_lib.interpolation import frame_count
from zs2_lib.video import write_videos
from zs2_lib.video_stream import VideoStream

FPS = 8


def streamed(
    frames: np.ndarray, directory: Path, formats: list[str], *, loop="loop", factor=1, comment=None
) -> dict[str, Path]:
    """``frames`` handed to a stream one by one, then finished as ``streamed.<format>``."""
    stream = VideoStream(directory, formats, fps=FPS, loop=loop, interpolate=factor)
    for frame in frames:
        stream.add(frame)
    return stream.finish(frames, "streamed", formats, comment)


@pytest.mark.parametrize("loop", ["loop", "once", "pingpong"])
@pytest.mark.parametrize("factor", [1, 2])
def test_a_streamed_video_holds_the_frames_of_the_one_written_at_the_end(
    tmp_path: Path, loop: str, factor: int
) -> None:
    frames = make_frames(count=5)
    formats = ["mp4", "webm", "gif"]
    ours = streamed(frames, tmp_path, formats, loop=loop, factor=factor)
    theirs = write_videos(frames, tmp_path, "end", formats, fps=FPS, loop=loop, interpolate=factor)
    expected_count = frame_count(5, factor, loop)
    if loop == "pingpong":
        expected_count = 2 * expected_count - 2
    for fmt in ("mp4", "webm"):
        got, meta = read_ffmpeg(ours[fmt])
        want, _ = read_ffmpeg(theirs[fmt])
        assert len(got) == expected_count
        assert np.array_equal(got, want), fmt  # same frames into the same encoder: the same video
        assert meta["fps"] == FPS * factor
    assert np.array_equal(read_pillow(ours["gif"])[0], read_pillow(theirs["gif"])[0])
    assert listing(tmp_path) == sorted(path.name for path in [*ours.values(), *theirs.values()])


def test_the_frames_are_encoded_off_the_callers_thread_before_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    real_write = ffmpeg.Encoder.write

    def write(self: ffmpeg.Encoder, frame: np.ndarray) -> None:
        writes.append(threading.current_thread().name)
        real_write(self, frame)

    monkeypatch.setattr(ffmpeg.Encoder, "write", write)
    frames = make_frames(count=6)
    stream = VideoStream(tmp_path, ["mp4"], fps=FPS, loop="once")
    for frame in frames:
        stream.add(frame)
    deadline = time.monotonic() + 30
    while len(writes) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writes == ["zs2-video-stream"] * 6  # all six reached ffmpeg before finish was called
    stream.finish(frames, "v", ["mp4"], None)
    assert len(writes) == 6


@pytest.mark.parametrize("known", [True, False], ids=["comment known at the start", "comment changed"])
def test_a_streamed_mp4_has_its_index_in_front_and_the_comment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    comment = "Steps: 20, ZS2: on"
    frames = make_frames(count=4)
    started_with = comment if known else "draft"
    stream = VideoStream(tmp_path, ["mp4", "webm"], fps=FPS, loop="loop", comment=started_with)
    for frame in frames:
        stream.add(frame)
    extra_runs = []
    real_run = ffmpeg.run
    monkeypatch.setattr(ffmpeg, "run", lambda args: extra_runs.append(args) or real_run(args))
    paths = stream.finish(frames, "v", ["mp4", "webm"], comment)
    assert len(extra_runs) == (0 if known else 2)  # a changed comment costs a stream copy per file
    for path in paths.values():
        assert ffmetadata(path)["comment"] == comment
    data = paths["mp4"].read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while downloading


def test_a_stream_that_failed_is_written_from_the_frames_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = ffmpeg.Encoder.write
    calls = []

    def write(self: ffmpeg.Encoder, frame: np.ndarray) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("pipe broke")
        real_write(self, frame)

    monkeypatch.setattr(ffmpeg.Encoder, "write", write)
    frames = make_frames(count=5)
    paths = streamed(frames, tmp_path, ["mp4"])
    monkeypatch.setattr(ffmpeg.Encoder, "write", real_write)
    reference = write_videos(frames, tmp_path, "end", ["mp4"], fps=FPS)
    assert np.array_equal(read_ffmpeg(paths["mp4"])[0], read_ffmpeg(reference["mp4"])[0])
    assert listing(tmp_path) == ["end.mp4", "streamed.mp4"]  # the broken stream's file is gone


def test_a_stream_that_saw_other_frames_is_not_used(tmp_path: Path) -> None:
    frames = make_frames(count=5)
    stream = VideoStream(tmp_path, ["mp4"], fps=FPS, loop="once")
    for frame in frames[:4]:  # one frame was never handed over
        stream.add(frame)
    paths = stream.finish(frames, "v", ["mp4"], None)
    assert len(read_ffmpeg(paths["mp4"])[0]) == 5
    assert listing(tmp_path) == ["v.mp4"]


def test_a_failing_format_at_the_end_takes_the_streamed_files_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args, **kwargs) -> None:
        raise OSError("disk full")

    monkeypatch.setitem(files.ENCODERS, "gif", fail)
    frames = make_frames(count=4)
    stream = VideoStream(tmp_path, ["mp4", "webm", "gif"], fps=FPS, loop="loop")
    for frame in frames:
        stream.add(frame)
    with pytest.raises(OSError, match="disk full"):
        stream.finish(frames, "v", ["mp4", "webm", "gif"], None)
    assert listing(tmp_path) == []


def test_abort_stops_the_encoders_and_removes_their_files(tmp_path: Path) -> None:
    stream = VideoStream(tmp_path, ["mp4", "webm"], fps=FPS, loop="loop")
    for frame in make_frames(count=3):
        stream.add(frame)
    stream.abort()
    stream.abort()  # again: nothing left to do
    assert listing(tmp_path) == []


def test_formats_that_need_every_frame_start_no_encoder(tmp_path: Path) -> None:
    frames = make_frames(count=3)
    stream = VideoStream(tmp_path, ["gif", "png"], fps=FPS, loop="loop")
    for frame in frames:
        stream.add(frame)
    assert listing(tmp_path) == []  # nothing streamed: GIF's palette needs every frame
    paths = stream.finish(frames, "v", ["gif", "png"], None)
    assert sorted(paths) == ["gif", "png"]


def test_a_stream_interpolates_with_the_function_it_is_given(tmp_path: Path) -> None:
    """A learned interpolator (RIFE) comes as a function; the stream uses it as write_videos does."""
    calls: list[str] = []

    def blend(a: np.ndarray, b: np.ndarray, times) -> list[np.ndarray]:
        calls.append(threading.current_thread().name)
        return [((1 - t) * a + t * b).round().astype(np.uint8) for t in times]

    frames = make_frames(count=4)
    stream = VideoStream(tmp_path, ["mp4"], fps=FPS, loop="loop", interpolate=2, interpolator=blend)
    for frame in frames:
        stream.add(frame)
    ours = stream.finish(frames, "streamed", ["mp4"], None)
    assert calls == ["zs2-video-stream"] * 3 + ["MainThread"]  # the 3 pairs as they come, then last→first
    theirs = write_videos(frames, tmp_path, "end", ["mp4"], fps=FPS, interpolate=2, interpolator=blend)
    assert np.array_equal(read_ffmpeg(ours["mp4"])[0], read_ffmpeg(theirs["mp4"])[0])
    assert len(read_ffmpeg(ours["mp4"])[0]) == 8
