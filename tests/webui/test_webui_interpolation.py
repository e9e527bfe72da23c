"""Frame interpolation in a real A1111: the encoded videos carry in-betweens, the PNG frames do not."""

from __future__ import annotations

import base64

import pytest

from tests.webui.test_webui_video import FRAMES, decode_gif, decode_mp4
from tests.webui.webui_client import mean_abs_diff, txt2img_request, zs2_args


def test_times_two_writes_two_f_minus_one_frames_at_twice_the_fps(zs2_server, tmp_path, measure):
    pytest.importorskip("cv2")
    args = zs2_args(interpolate=2, loop="once", **{"lambda": 0.2})
    result = zs2_server.ok(txt2img_request(args))

    assert len(result.frames) == FRAMES  # the gallery and the API keep the sampled frames
    data = {v["format"]: base64.b64decode(v["data"]) for v in result.info["zs2_videos"]}
    (tmp_path / "video.mp4").write_bytes(data["mp4"])
    mp4 = decode_mp4(tmp_path / "video.mp4")
    gif, info = decode_gif(data["gif"])
    assert len(mp4) == len(gif) == 2 * FRAMES - 1
    assert info["durations"] == [60] * (2 * FRAMES - 1)  # 1000 / 16 ms in whole centiseconds
    sampled = mean_abs_diff(mp4[::2], result.frames)
    gap = mean_abs_diff(result.frames[:-1], result.frames[1:])
    to_previous = mean_abs_diff(mp4[1::2], result.frames[:-1])
    to_next = mean_abs_diff(mp4[1::2], result.frames[1:])
    measure(
        f"x2: |mp4 sampled - PNG| = {sampled:.2f}; in-betweens to previous/next PNG {to_previous:.2f}/"
        f"{to_next:.2f}, consecutive PNG change {gap:.2f} (0-255)"
    )
    assert sampled < 40  # the sampled frames, through lossy yuv420 (as without interpolation)
    assert to_previous < gap  # each in-between lies between its neighbours
    assert to_next < gap
    assert "interpolate=2" in result.info["infotexts"][0]


def test_a_target_fps_of_24_at_8_fps_writes_three_times_the_frames_at_24_fps(zs2_server, tmp_path, measure):
    """Target FPS picks the factor (24 / 8 = ×3, a factor the interpolate setting does not offer)."""
    pytest.importorskip("cv2")
    result = zs2_server.ok(txt2img_request(zs2_args(target_fps=24, loop="once", formats="mp4,gif")))

    data = {v["format"]: base64.b64decode(v["data"]) for v in result.info["zs2_videos"]}
    (tmp_path / "video.mp4").write_bytes(data["mp4"])
    gif, info = decode_gif(data["gif"])
    assert len(decode_mp4(tmp_path / "video.mp4")) == len(gif) == 3 * (FRAMES - 1) + 1
    assert info["durations"] == [40] * len(gif)  # 1000 / 24 ms in whole centiseconds
    report = result.info["zs2_report"][0]
    assert (report["interpolate"], report["fps"]) == (3, 8)
    assert "target_fps=24" in result.info["infotexts"][0]
    measure(f"target fps 24 at 8 fps: x{report['interpolate']}, {len(gif)} frames for {FRAMES}")
