"""Tests for zs2_lib.ffmpeg: raw frames in and out exactly, the stream described, cheap starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from tests.test_video import make_frames
from zs2_lib import ffmpeg

LOSSLESS = ["-c:v", "png"]  # RGB in, RGB out: what comes back must be exactly what went in


def test_decode_gives_back_exactly_the_frames_encode_wrote(tmp_path: Path) -> None:
    frames = make_frames(count=7, height=34, width=50)
    path = tmp_path / "clip.mkv"
    ffmpeg.encode(frames, path, fps=12.5, output_args=LOSSLESS)
    info = ffmpeg.probe(path)
    assert (info.width, info.height, info.fps) == (50, 34, 12.5)
    decoded = np.stack(list(ffmpeg.decode(path, info)))
    assert decoded.shape == frames.shape
    assert np.array_equal(decoded, frames)


def test_decode_stopped_early_leaves_no_ffmpeg_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "clip.mkv"
    ffmpeg.encode(make_frames(count=30), path, fps=8, output_args=LOSSLESS)
    started = recorded_starts(monkeypatch)
    reader = ffmpeg.decode(path, ffmpeg.probe(path))
    first = next(reader)
    reader.close()
    assert first.shape == (34, 50, 3)
    assert started[-1].returncode is not None  # waited for, not left behind


def test_a_rotated_video_is_described_upright(tmp_path: Path) -> None:
    """ffmpeg turns frames by the display matrix, so the frame size is the turned one."""
    frames = make_frames(count=3, height=34, width=50)
    plain, turned = tmp_path / "plain.mp4", tmp_path / "turned.mp4"
    ffmpeg.encode(frames, plain, fps=8, output_args=["-c:v", "libx264", "-pix_fmt", "yuv420p"])
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(plain)]
    subprocess.run([*command, "-c", "copy", str(turned)], check=True)
    info = ffmpeg.probe(turned)
    assert (info.width, info.height) == (34, 50)
    decoded = list(ffmpeg.decode(turned, info))
    assert len(decoded) == 3
    assert decoded[0].shape == (50, 34, 3)


def test_a_file_that_is_no_video_is_refused_with_ffmpegs_words(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(RuntimeError, match="Invalid data"):
        ffmpeg.probe(path)


def test_ffmpeg_starts_in_a_session_of_its_own_without_a_pre_exec_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pre-exec hook (imageio-ffmpeg's ``os.setpgrp``) forces a fork of the whole webui per start."""
    started = recorded_starts(monkeypatch)
    path = tmp_path / "clip.mkv"
    ffmpeg.encode(make_frames(count=2), path, fps=8, output_args=LOSSLESS)
    list(ffmpeg.decode(path, ffmpeg.probe(path)))
    assert len(started) == 3  # encode, probe (through run), decode
    for process in started:
        assert process.zs2_kwargs.get("start_new_session") is True
        assert process.zs2_kwargs.get("preexec_fn") is None


def recorded_starts(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen]:
    """Every ffmpeg process zs2_lib.ffmpeg starts from now on, with the keywords it was started with."""
    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.zs2_kwargs = kwargs
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    return started
