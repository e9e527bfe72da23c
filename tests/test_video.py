"""Tests for writing videos (video, encoders, files): every format read back, atomic writes, validation."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from tests.video_writers import write_png_frames, write_video
from zs2_lib import encoders, ffmpeg, files, video
from zs2_lib.video import (
    FORMATS,
    LOOP_MODES,
    VideoDependencyError,
    sequence_for_loop,
    unique_basename,
    write_videos,
)

FPS = 8
COUNT = 6
SIZES = [(34, 50), (33, 47)]  # (H, W): even, and odd in both directions
REPO = Path(__file__).resolve().parents[1]

# Mean absolute error bounds (0-255 scale) on the test pattern, whose every frame spans the whole
# colour cube with strong per-pixel chroma (measured: MP4 ≈ 2.6, WebM ≈ 2.1, WebP ≈ 2.6, GIF ≈ 8.5).
# MP4/WebM: CRF 18/24 plus 4:2:0 chroma, read back with an accurate chroma upsampler.
# WebP: lossy quality 90, also 4:2:0.
# GIF: 256 colours for the whole cube leave about 256^(1/3) ≈ 6 levels per channel, a step of
# ≈ 40 whose mean rounding error is ≈ 10; median cut does a little better. An encoder fault
# (wrong frame order, colour matrix or channel swap) gives errors of 30 or more.
MAE_BOUND = {"mp4": 5.0, "webm": 5.0, "webp": 5.0, "gif": 12.0}

# ffmpeg's default yuv420p -> rgb24 conversion upsamples chroma by nearest neighbour, adding ≈ 3
# to the error on these tiny frames; players interpolate, so read back the way they do.
ACCURATE_DECODE = ["-vf", "scale=flags=accurate_rnd+full_chroma_int"]


def make_frames(count: int = COUNT, height: int = 34, width: int = 50) -> np.ndarray:
    """Smooth colour waves that move from frame to frame: uint8 [count, height, width, 3]."""
    t = np.arange(count)[:, None, None] / count
    y = np.arange(height)[None, :, None] / height
    x = np.arange(width)[None, None, :] / width
    red = 127.5 + 110 * np.sin(2 * np.pi * (x + t))
    green = 127.5 + 110 * np.cos(2 * np.pi * (y - t))
    blue = 127.5 + 110 * np.sin(2 * np.pi * (x + y + 2 * t))
    channels = np.broadcast_arrays(red, green, blue)
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def expected(frames: np.ndarray, loop: str) -> np.ndarray:
    """What the file should hold for a loop mode."""
    if loop == "pingpong":
        return np.concatenate([frames, frames[-2:0:-1]])
    return frames


def mae(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 arrays."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def read_ffmpeg(path: Path) -> tuple[np.ndarray, dict]:
    """All frames of an MP4/WebM as uint8 [F, H, W, 3], and imageio-ffmpeg's metadata."""
    reader = imageio_ffmpeg.read_frames(str(path), output_params=ACCURATE_DECODE)
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(data, np.uint8).reshape(height, width, 3) for data in reader]
    return np.stack(frames), meta


def read_pillow(path: Path) -> tuple[np.ndarray, list[int], dict]:
    """All frames of a GIF/WebP as uint8 [F, H, W, 3], each frame's duration, and the file info."""
    with Image.open(path) as image:
        info = dict(image.info)
        frames, durations = [], []
        for frame in ImageSequence.Iterator(image):
            frames.append(np.asarray(frame.convert("RGB")))
            durations.append(frame.info["duration"])
        assert image.n_frames == len(frames)
    return np.stack(frames), durations, info


def ffmetadata(path: Path) -> dict[str, str]:
    """The container's global metadata tags, keys lower-cased, values unescaped."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=True,
    )
    tags: dict[str, str] = {}
    key, value, escaped = None, [], False
    for char in result.stdout.split("\n", 1)[1]:  # skip the ";FFMETADATA1" header
        if escaped:
            value.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=" and key is None:
            key, value = "".join(value).lower(), []
        elif char == "\n":
            if key is not None:
                tags[key] = "".join(value)
            key, value = None, []
        else:
            value.append(char)
    return tags


def listing(directory: Path) -> list[str]:
    """Every entry under ``directory``, hidden ones included, relative and sorted."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


# --- sequence_for_loop ----------------------------------------------------------------------------


def test_constants() -> None:
    assert FORMATS == ("mp4", "webm", "gif", "webp", "png")
    assert LOOP_MODES == ("loop", "once", "pingpong")


@pytest.mark.parametrize(
    ("count", "order"),
    [(1, [0]), (2, [0, 1]), (3, [0, 1, 2, 1]), (5, [0, 1, 2, 3, 4, 3, 2, 1])],
)
def test_pingpong_reverses_without_repeating_the_ends(count: int, order: list[int]) -> None:
    frames = np.arange(count).reshape(count, 1)
    np.testing.assert_array_equal(sequence_for_loop(frames, "pingpong")[:, 0], order)


@pytest.mark.parametrize("loop", ["loop", "once"])
def test_other_loop_modes_keep_the_frames(loop: str) -> None:
    frames = make_frames()
    assert sequence_for_loop(frames, loop) is frames


def test_sequence_for_loop_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match=r"loop: 'bounce' is not one of loop, once, pingpong"):
        sequence_for_loop(make_frames(), "bounce")


# --- each format, read back -----------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOP_MODES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_ffmpeg_formats_round_trip(tmp_path: Path, fmt: str, size: tuple[int, int], loop: str) -> None:
    height, width = size
    frames = make_frames(COUNT, height, width)
    path = write_video(frames, tmp_path / f"clip.{fmt}", fps=FPS, loop=loop)

    assert path == tmp_path / f"clip.{fmt}"
    assert listing(tmp_path) == [f"clip.{fmt}"]
    got, meta = read_ffmpeg(path)
    assert meta["codec"] == {"mp4": "h264", "webm": "vp9"}[fmt]
    assert meta["pix_fmt"].startswith("yuv420p")
    assert "bt709" in meta["pix_fmt"]
    assert meta["fps"] == pytest.approx(FPS, rel=1e-3)
    assert meta["size"] == (width + width % 2, height + height % 2)
    want = expected(frames, loop)
    assert len(got) == len(want) == (2 * COUNT - 2 if loop == "pingpong" else COUNT)
    assert mae(got[:, :height, :width], want) < MAE_BOUND[fmt]


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_odd_sizes_are_padded_by_repeating_the_last_row_and_column(tmp_path: Path, fmt: str) -> None:
    frames = np.full((3, 33, 47, 3), 128, np.uint8)
    frames[:, -1, :] = (255, 0, 0)  # last row red
    frames[:, :, -1] = (0, 0, 255)  # last column blue
    got, _ = read_ffmpeg(write_video(frames, tmp_path / f"odd.{fmt}", fps=FPS))

    assert got.shape == (3, 34, 48, 3)
    assert mae(got[:, 33, 4:-4], np.array([255, 0, 0])) < 12  # a black pad would be ≈ 85 off
    assert mae(got[:, 4:-4, 47], np.array([0, 0, 255])) < 12


@pytest.mark.parametrize("loop", LOOP_MODES)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_pillow_formats_round_trip(tmp_path: Path, fmt: str, size: tuple[int, int], loop: str) -> None:
    height, width = size
    frames = make_frames(COUNT, height, width)
    path = write_video(frames, tmp_path / f"clip.{fmt}", fps=FPS, loop=loop)

    assert listing(tmp_path) == [f"clip.{fmt}"]
    got, durations, info = read_pillow(path)
    want = expected(frames, loop)
    assert got.shape == want.shape
    assert len(got) == (2 * COUNT - 2 if loop == "pingpong" else COUNT)
    # 1000 / 8 = 125 ms; GIF stores centiseconds, so 120 or 130 ms there.
    tolerance = 5 if fmt == "gif" else 0
    assert all(abs(duration - 1000 / FPS) <= tolerance for duration in durations)
    assert mae(got, want) < MAE_BOUND[fmt]
    if fmt == "gif":
        if loop == "once":
            assert "loop" not in info  # no NETSCAPE extension: plays once
        else:
            assert info["loop"] == 0
    else:
        assert info["loop"] == (1 if loop == "once" else 0)


@pytest.mark.parametrize(("fps", "delay"), [(8, 120), (10, 100), (30, 30), (50, 20), (100, 20)])
def test_gif_delay_is_whole_centiseconds_and_at_least_twenty_ms(
    tmp_path: Path, fps: float, delay: int
) -> None:
    _, durations, _ = read_pillow(write_video(make_frames(3, 8, 8), tmp_path / "d.gif", fps=fps))
    assert durations == [delay] * 3


def test_webp_delay_is_rounded_milliseconds(tmp_path: Path) -> None:
    _, durations, _ = read_pillow(write_video(make_frames(3, 8, 8), tmp_path / "d.webp", fps=7))
    assert durations == [143] * 3  # 1000 / 7 = 142.9


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_ffmpeg_formats_store_the_comment(tmp_path: Path, fmt: str) -> None:
    comment = "a cat, walking\nSteps: 20, CFG = 7; #1 ü"
    path = write_video(make_frames(), tmp_path / f"c.{fmt}", fps=FPS, comment=comment)
    assert ffmetadata(path)["comment"] == comment


def test_gif_stores_the_comment(tmp_path: Path) -> None:
    comment = "a cat, walking\nSteps: 20 ü"
    _, _, info = read_pillow(write_video(make_frames(), tmp_path / "c.gif", fps=FPS, comment=comment))
    assert info["comment"].decode("utf-8") == comment


def test_suffix_case_is_ignored_and_parents_are_created(tmp_path: Path) -> None:
    path = write_video(make_frames(), tmp_path / "a" / "b" / "clip.GIF", fps=FPS)
    assert path.is_file()
    assert listing(tmp_path) == ["a", "a/b", "a/b/clip.GIF"]


def test_an_existing_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "clip.webp"
    target.write_bytes(b"old")
    write_video(make_frames(), target, fps=FPS)
    assert read_pillow(target)[0].shape == (COUNT, 34, 50, 3)
    assert listing(tmp_path) == ["clip.webp"]


# --- PNG frames -----------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOP_MODES)
def test_png_frames_are_exact(tmp_path: Path, loop: str) -> None:
    frames = make_frames(COUNT, 33, 47)
    directory = write_png_frames(frames, tmp_path / "clip-frames", loop=loop)

    want = expected(frames, loop)
    names = [f"{index:05d}.png" for index in range(len(want))]
    assert sorted(p.name for p in directory.iterdir()) == names
    assert listing(tmp_path) == ["clip-frames", *(f"clip-frames/{name}" for name in names)]
    for name, frame in zip(names, want, strict=True):
        with Image.open(directory / name) as image:
            assert image.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(image), frame)


def test_png_frames_refuse_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "clip-frames").mkdir()
    with pytest.raises(FileExistsError, match="clip-frames"):
        write_png_frames(make_frames(), tmp_path / "clip-frames")
    assert listing(tmp_path) == ["clip-frames"]


# --- write_videos ---------------------------------------------------------------------------------


def test_write_videos_writes_every_format(tmp_path: Path) -> None:
    out = tmp_path / "out"
    paths = write_videos(make_frames(), out, "zs2-00001", FORMATS, fps=FPS, loop="pingpong", comment="hi")

    assert list(paths) == list(FORMATS)
    assert paths == {
        "mp4": out / "zs2-00001.mp4",
        "webm": out / "zs2-00001.webm",
        "gif": out / "zs2-00001.gif",
        "webp": out / "zs2-00001.webp",
        "png": out / "zs2-00001-frames",
    }
    assert all(path.exists() for path in paths.values())
    assert len(list(paths["png"].iterdir())) == 2 * COUNT - 2
    assert read_pillow(paths["gif"])[2]["comment"] == b"hi"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_write_videos_accepts_one_format_as_a_string_and_drops_duplicates(tmp_path: Path) -> None:
    assert list(write_videos(make_frames(), tmp_path, "v", "gif", fps=FPS)) == ["gif"]
    paths = write_videos(make_frames(), tmp_path, "w", ["webp", "gif", "webp"], fps=FPS)
    assert list(paths) == ["webp", "gif"]


def test_write_videos_refuses_an_existing_png_directory_before_writing(tmp_path: Path) -> None:
    (tmp_path / "v-frames").mkdir()
    with pytest.raises(FileExistsError):
        write_videos(make_frames(), tmp_path, "v", ["gif", "png"], fps=FPS)
    assert listing(tmp_path) == ["v-frames"]


# --- atomicity ------------------------------------------------------------------------------------


def save_then_fail(monkeypatch: pytest.MonkeyPatch, error: BaseException, fail_on_call: int = 1) -> None:
    """Make Pillow's save write its file completely, then raise ``error`` on the given call."""
    real_save = Image.Image.save
    calls = []

    def save(self: Image.Image, fp, *args, **kwargs) -> None:
        real_save(self, fp, *args, **kwargs)
        calls.append(fp)
        if len(calls) == fail_on_call:
            assert Path(fp).exists()  # the failure really leaves something to clean up
            raise error

    monkeypatch.setattr(Image.Image, "save", save)


@pytest.mark.parametrize("fmt", ["gif", "webp"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()], ids=["OSError", "interrupt"])
def test_pillow_failure_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, error: BaseException
) -> None:
    save_then_fail(monkeypatch, error)
    with pytest.raises(type(error)):
        write_video(make_frames(), tmp_path / f"clip.{fmt}", fps=FPS)
    assert listing(tmp_path) == []


def test_pillow_failure_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clip.gif").write_bytes(b"old")
    save_then_fail(monkeypatch, OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        write_video(make_frames(), tmp_path / "clip.gif", fps=FPS)
    assert listing(tmp_path) == ["clip.gif"]
    assert (tmp_path / "clip.gif").read_bytes() == b"old"


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_ffmpeg_failure_mid_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    real_feed = ffmpeg._feed
    written = []

    def feed(encoder: ffmpeg.Encoder, frames: np.ndarray) -> None:
        real_feed(encoder, frames[:1])  # the first frame really reaches ffmpeg
        written.append(encoder.path)
        raise OSError("pipe broke")

    monkeypatch.setattr(ffmpeg, "_feed", feed)
    with pytest.raises(OSError, match="pipe broke"):
        write_video(make_frames(), tmp_path / f"clip.{fmt}", fps=FPS)
    assert len(written) == 1
    assert written[0].name.startswith(".clip.tmp-")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_an_ffmpeg_error_is_quoted_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    codec, params = encoders._FFMPEG_CODECS[fmt]
    monkeypatch.setitem(encoders._FFMPEG_CODECS, fmt, (codec, [*params, "-no-such-option", "1"]))
    with pytest.raises(RuntimeError, match=r"ffmpeg could not write \..*no-such-option"):
        write_video(make_frames(), tmp_path / f"clip.{fmt}", fps=FPS)
    assert listing(tmp_path) == []


def test_png_failure_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_then_fail(monkeypatch, OSError("disk full"), fail_on_call=3)
    with pytest.raises(OSError, match="disk full"):
        write_png_frames(make_frames(), tmp_path / "clip-frames")
    assert listing(tmp_path) == []


@pytest.mark.parametrize("failing_call", [1, 3], ids=["gif", "third png"])
def test_write_videos_is_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: int
) -> None:
    (tmp_path / "keep.txt").write_text("unrelated")
    save_then_fail(monkeypatch, OSError("disk full"), fail_on_call=failing_call)
    formats = ["mp4", "webm", "gif", "png"] if failing_call == 1 else ["mp4", "png", "gif"]
    with pytest.raises(OSError, match="disk full"):
        write_videos(make_frames(), tmp_path, "v", formats, fps=FPS)
    assert listing(tmp_path) == ["keep.txt"]


def test_write_videos_encodes_the_formats_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meeting = threading.Barrier(2, timeout=10)  # broken (an error) if the two never run at once

    def meet_then_encode(real):
        def encode(*args, **kwargs) -> None:
            meeting.wait()
            real(*args, **kwargs)

        return encode

    for fmt in ("gif", "webp"):
        monkeypatch.setitem(files.ENCODERS, fmt, meet_then_encode(files.ENCODERS[fmt]))
    written = write_videos(make_frames(), tmp_path, "v", ["gif", "webp"], fps=FPS)
    assert sorted(path.name for path in written.values()) == listing(tmp_path) == ["v.gif", "v.webp"]


def test_write_videos_removes_committed_files_if_a_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = video.os.replace

    def replace(src, dst) -> None:
        if str(dst).endswith(".gif"):
            raise PermissionError("locked")
        real_replace(src, dst)

    monkeypatch.setattr(video.os, "replace", replace)
    with pytest.raises(PermissionError):
        write_videos(make_frames(), tmp_path, "v", ["webp", "gif", "png"], fps=FPS)
    assert listing(tmp_path) == []


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frames",
    [
        make_frames().astype(np.float32),
        make_frames()[0],
        make_frames()[..., :2],
        np.concatenate([make_frames(), make_frames()[..., :1]], axis=-1),
        make_frames()[:0],
        make_frames()[:, :0],
    ],
    ids=["float", "3-d", "2 channels", "4 channels", "no frames", "no rows"],
)
def test_bad_frames_are_named(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"^frames: expected .*(uint8|\[F, H, W, 3\])"):
        write_video(frames, tmp_path / "v.gif", fps=FPS)
    with pytest.raises(ValueError, match=r"^frames: "):
        write_png_frames(frames, tmp_path / "f")
    with pytest.raises(ValueError, match=r"^frames: "):
        write_videos(frames, tmp_path, "v", ["gif"], fps=FPS)
    assert listing(tmp_path) == []


def test_frames_must_be_an_array(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^frames: expected a numpy array, got list"):
        write_video(list(make_frames()), tmp_path / "v.gif", fps=FPS)


@pytest.mark.parametrize("fps", [0, -8, float("nan"), float("inf"), "8", True, None])
def test_bad_fps_is_named(tmp_path: Path, fps: object) -> None:
    with pytest.raises(ValueError, match=r"^fps: expected a finite number > 0"):
        write_video(make_frames(), tmp_path / "v.mp4", fps=fps)
    with pytest.raises(ValueError, match=r"^fps: "):
        write_videos(make_frames(), tmp_path, "v", ["png"], fps=fps)
    assert listing(tmp_path) == []


def test_fps_accepts_any_real_number(tmp_path: Path) -> None:
    _, meta = read_ffmpeg(write_video(make_frames(), tmp_path / "v.mp4", fps=np.float32(12.5)))
    assert meta["fps"] == pytest.approx(12.5, rel=1e-3)


def test_bad_loop_is_named(tmp_path: Path) -> None:
    for call in (
        lambda: write_video(make_frames(), tmp_path / "v.gif", fps=FPS, loop="forever"),
        lambda: write_png_frames(make_frames(), tmp_path / "f", loop="forever"),
        lambda: write_videos(make_frames(), tmp_path, "v", ["gif"], fps=FPS, loop="forever"),
    ):
        with pytest.raises(ValueError, match=r"^loop: 'forever' is not one of loop, once, pingpong$"):
            call()
    assert listing(tmp_path) == []


@pytest.mark.parametrize("name", ["v.avi", "v.png", "v"])
def test_bad_suffix_is_named(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"^path: suffix .* is not one of \.mp4, \.webm, \.gif, \.webp"):
        write_video(make_frames(), tmp_path / name, fps=FPS)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("formats", [["gif", "avi"], ["GIF"], []])
def test_bad_formats_are_named(tmp_path: Path, formats: list[str]) -> None:
    with pytest.raises(ValueError, match=r"^formats: .*mp4, webm, gif, webp, png"):
        write_videos(make_frames(), tmp_path / "out", "v", formats, fps=FPS)
    assert listing(tmp_path) == []


def test_bad_format_value_is_quoted(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'avi'"):
        write_videos(make_frames(), tmp_path, "v", ["gif", "avi"], fps=FPS)


@pytest.mark.parametrize("basename", ["", "a/b", "..", "a\\b"])
def test_bad_basename_is_named(tmp_path: Path, basename: str) -> None:
    with pytest.raises(ValueError, match=r"^basename: "):
        write_videos(make_frames(), tmp_path, basename, ["gif"], fps=FPS)


def test_comment_must_be_text(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^comment: "):
        write_video(make_frames(), tmp_path / "v.gif", fps=FPS, comment=b"bytes")


# --- unique_basename ------------------------------------------------------------------------------


def test_unique_basename_starts_at_one(tmp_path: Path) -> None:
    assert unique_basename(tmp_path, "zs2") == "zs2-00001"
    assert unique_basename(tmp_path / "missing", "zs2") == "zs2-00001"


def test_unique_basename_increments_past_files_and_frame_folders(tmp_path: Path) -> None:
    (tmp_path / "zs2-00001.mp4").touch()
    assert unique_basename(tmp_path, "zs2") == "zs2-00002"
    (tmp_path / "zs2-00004-frames").mkdir()
    assert unique_basename(tmp_path, "zs2") == "zs2-00005"
    unrelated = ["zs2-00009x.mp4", "zs2-0010.mp4", "other-00011.mp4", "zs2-00012", ".zs2-00013.tmp-1-ab.mp4"]
    for name in unrelated:
        (tmp_path / name).touch()
    assert unique_basename(tmp_path, "zs2") == "zs2-00005"
    assert unique_basename(tmp_path, "other") == "other-00012"


def test_unique_basename_goes_past_five_digits(tmp_path: Path) -> None:
    (tmp_path / "zs2-99999.gif").touch()
    assert unique_basename(tmp_path, "zs2") == "zs2-100000"


def test_unique_basename_with_write_videos(tmp_path: Path) -> None:
    names = []
    for _ in range(3):
        names.append(unique_basename(tmp_path, "a.b"))
        write_videos(make_frames(2, 8, 8), tmp_path, names[-1], ["png"], fps=FPS)
    assert names == ["a.b-00001", "a.b-00002", "a.b-00003"]


def test_unique_basename_rejects_a_path_as_prefix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^prefix: "):
        unique_basename(tmp_path, "sub/zs2")


# --- dependencies ---------------------------------------------------------------------------------


@pytest.fixture
def no_imageio_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import imageio_ffmpeg`` fail as if the package were not installed."""
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)


@pytest.mark.usefixtures("no_imageio_ffmpeg")
@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_missing_imageio_ffmpeg_is_explained(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(VideoDependencyError, match=r"pip install imageio-ffmpeg") as caught:
        write_video(make_frames(), tmp_path / "sub" / f"v.{fmt}", fps=FPS)
    assert isinstance(caught.value, RuntimeError)
    assert fmt.upper() in str(caught.value)
    assert listing(tmp_path) == []  # not even the parent directory


@pytest.mark.usefixtures("no_imageio_ffmpeg")
def test_other_formats_work_without_imageio_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_videos(make_frames(), tmp_path, "v", ["gif", "webp", "png"], fps=FPS)
    assert all(path.exists() for path in paths.values())

    saved = []
    monkeypatch.setattr(Image.Image, "save", lambda self, fp, *args, **kwargs: saved.append(fp))
    with pytest.raises(VideoDependencyError, match="imageio-ffmpeg"):
        write_videos(make_frames(), tmp_path / "w", "w", ["gif", "mp4"], fps=FPS)
    assert saved == []  # checked before the GIF was encoded
    assert not (tmp_path / "w").exists()


def test_import_is_host_free_and_lazy() -> None:
    code = (
        "import sys; sys.modules['imageio_ffmpeg'] = None; import zs2_lib.video; "
        "banned = {'modules', 'ldm', 'sgm', 'gradio', 'launch'} & set(sys.modules); "
        "assert not banned, banned"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_write_text_is_atomic_with_normal_permissions(tmp_path, monkeypatch):
    path = video.write_text(tmp_path / "sub" / "a.txt", "Steps: 20, ZS2 Video: frames=8")
    assert path.read_text(encoding="utf-8") == "Steps: 20, ZS2 Video: frames=8"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        video.write_text(tmp_path / "b.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


@pytest.mark.usefixtures("no_imageio_ffmpeg")
def test_require_encoders_checks_before_any_sampling() -> None:
    """The A1111 glue asks this before a run starts, so a missing encoder costs no sampling."""
    video.require_encoders(["gif", "png"])
    with pytest.raises(VideoDependencyError, match="pip install imageio-ffmpeg"):
        video.require_encoders(["gif", "mp4"])
