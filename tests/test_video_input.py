"""Tests for reading videos as input (video_input): exact frames from every format, ranges, errors, audio."""

from __future__ import annotations

import base64
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tests.test_video import MAE_BOUND, mae, make_frames
from tests.video_writers import write_video
from zs2_lib.audio import carry_audio, has_audio
from zs2_lib.params import FIELD_BY_NAME, ParamError
from zs2_lib.video_input import read_data, read_frames, resolve_source

COUNT = 12
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def write_folder(frames: np.ndarray, folder: Path) -> Path:
    """Frames as frame1.png ... frame12.png: a name sort would put frame10 before frame2."""
    folder.mkdir()
    for index, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"frame{index}.png")
    return folder


def assert_same_frames(got: np.ndarray, written: np.ndarray, bound: float) -> None:
    """Same count and size, each frame close to its own and closer to it than to any other frame."""
    assert got.shape == written.shape
    for index, frame in enumerate(got):
        errors = [mae(frame, other) for other in written]
        assert errors[index] <= bound
        assert int(np.argmin(errors)) == index


@pytest.mark.parametrize("fmt", ["mp4", "webm", "gif", "webp"])
def test_every_frame_of_a_video_file_is_read_in_order(tmp_path: Path, fmt: str) -> None:
    frames = make_frames(COUNT, 34, 50)
    path = write_video(frames, tmp_path / f"clip.{fmt}", fps=8)
    video = read_frames(path)
    assert_same_frames(video.frames, frames, MAE_BOUND[fmt] + 3)  # +3: default chroma upsampling
    assert video.total == COUNT
    assert video.indices == tuple(range(COUNT))
    assert video.fps == pytest.approx(8, abs=0.5)  # GIF delays are whole centiseconds
    assert video.name == f"clip.{fmt}"


def test_a_folder_of_frames_is_read_exactly_in_natural_order(tmp_path: Path) -> None:
    frames = make_frames(COUNT, 20, 30)
    video = read_frames(write_folder(frames, tmp_path / "frames"))
    np.testing.assert_array_equal(video.frames, frames)
    assert video.fps is None
    assert video.path is None


@pytest.mark.parametrize(
    ("start", "count", "step"), [(0, None, 1), (3, 4, 2), (1, None, 3), (11, 1, 5), (0, 12, 1)]
)
def test_start_count_and_step_select_those_frames(
    tmp_path: Path, start: int, count: int | None, step: int
) -> None:
    frames = make_frames(COUNT, 20, 30)
    video = read_frames(write_folder(frames, tmp_path / "f"), start=start, count=count, step=step)
    wanted = list(range(start, COUNT, step))[:count]
    assert video.indices == tuple(wanted)
    np.testing.assert_array_equal(video.frames, frames[wanted])
    if len(wanted) > 1:
        assert video.step == step


def test_a_variable_frame_rate_mp4_keeps_every_frame_where_a_constant_rate_read_would_duplicate(
    tmp_path: Path,
) -> None:
    source = write_video(make_frames(COUNT, 24, 32), tmp_path / "cfr.mp4", fps=8)
    vfr = tmp_path / "vfr.mp4"  # a one-second gap after frame 6
    gap = r"setpts=PTS+if(gte(N\,6)\,1/TB\,0)"
    ffmpeg("-i", str(source), "-vf", gap, "-fps_mode", "passthrough", "-crf", "4", str(vfr))
    reader = imageio_ffmpeg.read_frames(str(vfr))
    next(reader)
    assert sum(1 for _ in reader) > COUNT  # what a default read gives
    assert_same_frames(read_frames(vfr).frames, read_frames(source).frames, 3.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": 12}, "video_start"),
        ({"start": 10, "count": 3}, "video_frames"),
        ({"count": 5000}, "video_frames"),
    ],
)
def test_a_range_outside_the_video_is_refused_naming_the_field(
    tmp_path: Path, kwargs: dict, field: str
) -> None:
    folder = write_folder(make_frames(COUNT, 8, 8), tmp_path / "f")
    with pytest.raises(ParamError, match=re.escape(f"ZS² Video: {FIELD_BY_NAME[field].called}: ")):
        read_frames(folder, **kwargs)


def test_unreadable_empty_missing_and_mixed_sources_are_refused_naming_video(tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"not a video at all")
    (tmp_path / "empty").mkdir()
    mixed = write_folder(make_frames(2, 8, 8), tmp_path / "mixed")
    Image.fromarray(make_frames(1, 9, 8)[0]).save(mixed / "frame3.png")
    for source, problem in [
        (tmp_path / "bad.mp4", "cannot be"),
        (tmp_path / "empty", "has no frames"),
        (tmp_path / "missing.mp4", "is no file or folder"),
        (mixed, "mixed sizes"),
    ]:
        with pytest.raises(ParamError, match=rf"ZS² Video: Video input \(video\): .*{problem}"):
            read_frames(source)


def test_a_base64_video_is_read_like_its_file_and_a_path_is_used_as_it_is(tmp_path: Path) -> None:
    path = write_video(make_frames(COUNT, 16, 16), tmp_path / "clip.webm", fps=8)
    resolved = resolve_source(base64.b64encode(path.read_bytes()).decode(), directory=str(tmp_path))
    assert resolved.temporary
    assert resolved.path.suffix == ".webm"
    np.testing.assert_array_equal(read_frames(resolved.path).frames, read_frames(path).frames)
    data_url = resolve_source(
        "data:video/webm;base64," + base64.b64encode(path.read_bytes()).decode(), str(tmp_path)
    )
    assert data_url.path.read_bytes() == path.read_bytes()
    assert resolve_source(str(path)) == type(resolved)(path, temporary=False, name="clip.webm")
    with pytest.raises(ParamError, match=r"ZS² Video: Video input \(video\): "):
        resolve_source("no/such/clip.mp4")


def test_bytes_read_like_their_file_and_a_still_image_is_one_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    frames = make_frames(COUNT, 16, 16)
    for fmt in ("webm", "gif"):
        path = write_video(frames, tmp_path / f"clip.{fmt}", fps=8)
        from_bytes = read_data(path.read_bytes())
        assert from_bytes.name == f"uploaded.{fmt}"
        assert from_bytes.path is None
        np.testing.assert_array_equal(from_bytes.frames, read_frames(path).frames)
    still = tmp_path / "still.png"
    Image.fromarray(frames[3]).save(still)
    np.testing.assert_array_equal(read_frames(still).frames, frames[3:4])
    np.testing.assert_array_equal(read_data(still.read_bytes()).frames, frames[3:4])
    with pytest.raises(ParamError, match=r"ZS² Video: Video input \(video\): .*cannot be"):
        read_data(b"neither an image nor a video")
    assert not list(scratch.iterdir())  # the temporary files are gone


def source_with_audio(tmp_path: Path) -> Path:
    path = tmp_path / "talk.mp4"
    sources = ["-f", "lavfi", "-i", "testsrc=size=32x24:rate=8", "-f", "lavfi", "-i", "sine=frequency=440"]
    ffmpeg(
        *sources, "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)
    )
    return path


def duration_of_audio(path: Path) -> float:
    """The audio stream's duration in seconds, decoded by ffmpeg (time= of a null encode)."""
    result = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path), "-map", "0:a:0", "-f", "null", "-"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    hours, minutes, seconds = result.stderr.rsplit("time=", 1)[1].split()[0].split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_the_sources_audio_is_carried_into_mp4_and_webm_cut_to_the_frames_read(tmp_path: Path) -> None:
    source = read_frames(source_with_audio(tmp_path), start=4, count=8)  # 0.5 s to 1.5 s
    assert has_audio(source.path)
    assert source.span_seconds() == (0.5, 1.0)
    files = {
        fmt: write_video(source.frames, tmp_path / f"out.{fmt}", fps=8) for fmt in ("mp4", "webm", "gif")
    }
    assert not any(has_audio(path) for path in files.values())
    changed = carry_audio(files, source)
    assert changed == [files["mp4"], files["webm"]]
    for fmt in ("mp4", "webm"):
        assert has_audio(files[fmt])
        assert duration_of_audio(files[fmt]) == pytest.approx(1.0, abs=0.1)
        assert read_frames(files[fmt]).frames.shape == source.frames.shape  # video stream copied


def test_audio_is_dropped_on_request_and_absent_sources_add_none(tmp_path: Path) -> None:
    source = read_frames(source_with_audio(tmp_path))
    files = {"mp4": write_video(source.frames, tmp_path / "out.mp4", fps=8)}
    assert carry_audio(files, source, keep=False) == []
    assert not has_audio(files["mp4"])
    silent = read_frames(write_video(make_frames(4, 8, 8), tmp_path / "silent.mp4", fps=8))
    assert carry_audio(files, silent) == []
    assert not has_audio(files["mp4"])
