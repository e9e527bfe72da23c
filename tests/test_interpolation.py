"""Frame interpolation: in-betweens of a moving disc land where it is, counts, loops, written files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_video import read_ffmpeg, read_pillow
from zs2_lib.interpolation import factor_for, frame_count, interpolate
from zs2_lib.params import ZS2Params
from zs2_lib.video import sequence_for_loop, write_videos

pytest.importorskip("cv2")

HEIGHT, WIDTH, RADIUS, BACKGROUND = 64, 96, 10, 40


def disc(cx: float, cy: float) -> np.ndarray:
    """A shaded disc of radius RADIUS centred at (cx, cy) on a flat background: uint8 [H, W, 3]."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    distance = np.hypot(xs - cx, ys - cy)
    image = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    shaded = np.stack([230 - 6 * distance, 200 - 3 * distance, 120 + 4 * distance], axis=-1)
    inside = distance <= RADIUS
    image[inside] = shaded.clip(0, 255).astype(np.uint8)[inside]
    return image


def moving_disc(count: int, dx: int, dy: int = 0) -> np.ndarray:
    return np.stack([disc(20 + dx * i, 28 + dy * i) for i in range(count)])


def mask(image: np.ndarray) -> np.ndarray:
    return np.abs(image.astype(np.int16) - BACKGROUND).sum(axis=-1) > 60


def centroid(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask(image))
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize(("dx", "dy"), [(4, 0), (6, 0), (4, 2), (0, -6)])
def test_the_in_between_frame_puts_the_disc_at_the_midpoint_within_a_pixel(dx: int, dy: int) -> None:
    frames = moving_disc(3, dx, dy)
    out = interpolate(frames, 2, loop="once")

    for i in range(2):
        want = (centroid(frames[i]) + centroid(frames[i + 1])) / 2
        assert np.abs(centroid(out[2 * i + 1]) - want).max() <= 1.0
        # A cross-fade also has its centroid there, but as two half discs: the in-between must be one
        # disc of the same size, where a disc at the midpoint is (a cross-fade's overlap is ≈ 70 %).
        truth = mask(disc(20 + dx * (i + 0.5), 28 + dy * (i + 0.5)))
        union = (mask(out[2 * i + 1]) | truth).sum()
        assert (mask(out[2 * i + 1]) & truth).sum() / union > 0.9


def test_times_four_puts_each_in_between_at_its_quarter() -> None:
    frames = moving_disc(2, 8)
    out = interpolate(frames, 4, loop="once")

    xs = [centroid(frame)[0] for frame in out]
    assert np.abs(np.array(xs) - (20 + 2 * np.arange(5))).max() <= 1.0


def test_a_cross_fade_would_fail_the_overlap_check() -> None:
    """The overlap bound above tells motion from blending: a plain average of the ends stays below it."""
    a, b = moving_disc(2, 6)
    fade = ((a.astype(np.float32) + b) / 2).round().astype(np.uint8)
    truth = mask(disc(23, 28))
    assert (mask(fade) & truth).sum() / (mask(fade) | truth).sum() < 0.9


@pytest.mark.parametrize(
    ("factor", "loop", "count"),
    [
        (2, "once", 2 * 5 - 1),
        (2, "pingpong", 2 * 5 - 1),
        (2, "loop", 2 * 5),
        (4, "once", 4 * 5 - 3),
        (4, "loop", 4 * 5),
    ],
)
def test_frame_counts_follow_the_factor_and_the_loop_mode(factor: int, loop: str, count: int) -> None:
    frames = moving_disc(5, 3)
    out = interpolate(frames, factor, loop=loop)

    assert len(out) == frame_count(5, factor, loop) == count
    np.testing.assert_array_equal(out[::factor][:5], frames)  # the sampled frames are kept exactly


def test_loop_interpolates_the_last_to_first_transition() -> None:
    frames = moving_disc(3, 6)  # x = 20, 26, 32; back to 20
    out = interpolate(frames, 2, loop="loop")

    assert abs(centroid(out[-1])[0] - 26) <= 1.0  # halfway from 32 back to 20


def test_a_static_video_stays_bit_identical() -> None:
    frames = np.repeat(disc(30, 30)[None], 4, axis=0)
    out = interpolate(frames, 4, loop="loop")

    assert out.shape == (16, HEIGHT, WIDTH, 3)
    assert (out == frames[0]).all()


def test_factor_one_returns_the_frames_and_a_bad_factor_is_named() -> None:
    frames = moving_disc(3, 4)
    assert interpolate(frames, 1) is frames
    with pytest.raises(ValueError, match="interpolate: 9 is not a whole number from 1 to 8"):
        interpolate(frames, 9)
    assert len(interpolate(frames, 3, loop="once")) == frame_count(3, 3, "once") == 7  # a target FPS's ×3


@pytest.mark.parametrize(
    ("fps", "interpolate_setting", "target", "factor"),
    [
        (8, 2, 0, 2),
        (8, 1, 24, 3),
        (8, 1, 30, 4),
        (12, 1, 30, 3),
        (24, 1, 25, 1),
        (8, 4, 16, 2),
        (1, 1, 60, 8),
    ],
)
def test_a_target_fps_picks_the_nearest_whole_factor_and_zero_keeps_the_setting(
    fps: float, interpolate_setting: int, target: float, factor: int
) -> None:
    assert factor_for(fps, interpolate_setting, target) == factor


@pytest.mark.parametrize(
    ("loop", "written"), [("once", 4 * 4 - 3), ("loop", 4 * 4), ("pingpong", 2 * (4 * 4 - 3) - 2)]
)
def test_written_files_have_the_interpolated_frames_at_the_multiplied_fps(
    tmp_path: Path, loop: str, written: int
) -> None:
    frames = moving_disc(4, 4)
    files = write_videos(frames, tmp_path, "v", ["mp4", "gif", "png"], fps=5, loop=loop, interpolate=4)

    got, meta = read_ffmpeg(files["mp4"])
    assert len(got) == written
    assert meta["fps"] == pytest.approx(20, rel=1e-3)
    if loop != "once":  # a whole cycle lasts as long as without interpolation
        cycle = 4 if loop == "loop" else 2 * 4 - 2
        assert len(got) / meta["fps"] == pytest.approx(cycle / 5)
    _, durations, _ = read_pillow(files["gif"])
    assert len(durations) == written
    assert all(duration == 50 for duration in durations)  # 1000 / 20 ms
    pngs = sorted(files["png"].iterdir())
    sampled = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in pngs])
    np.testing.assert_array_equal(sampled, sequence_for_loop(frames, loop))  # PNG: the sampled frames


def test_the_params_take_interpolate_one_two_or_four_and_round_trip_the_infotext() -> None:
    params = ZS2Params(interpolate="4")
    assert params.interpolate == 4
    assert ZS2Params.from_infotext(params.to_infotext()).interpolate == 4
    assert ZS2Params.from_dict({"interpolate": 2, "interpolator": "OpenCV"}).interpolator == "opencv"
    message = r"Interpolation \(interpolate\): 3 is not one of the choices \(accepted: 1, 2, 4\)"
    with pytest.raises(ValueError, match=message):
        ZS2Params(interpolate=3)
    with pytest.raises(ValueError, match="interpolator"):
        ZS2Params(interpolator="film")
