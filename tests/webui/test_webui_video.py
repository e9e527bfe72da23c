"""ZS² on in a real A1111: frames, videos in the API response and on disk, infotext, determinism."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.test_video import ffmetadata
from tests.webui.webui_client import (
    consecutive_change,
    max_abs_diff,
    mean_abs_diff,
    png_text,
    txt2img_request,
    wrote_paths,
    zs2_args,
    zs2_infotext_value,
)
from zs2_lib.params import ZS2Params

FRAMES = 8


def decode_gif(data: bytes) -> tuple[list[np.ndarray], dict]:
    with Image.open(io.BytesIO(data)) as gif:
        info = dict(gif.info)
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")).copy())
            info.setdefault("durations", []).append(gif.info.get("duration"))
    return frames, info


def decode_mp4(path: Path) -> list[np.ndarray]:
    """The MP4's frames through imageio-ffmpeg (the extension's own dependency: the test skips, never
    passes silently, where it is missing)."""
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")  # the ffmpeg plugin needs it
    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        return [np.asarray(frame)[..., :3].copy() for frame in reader]


def assert_frames_in_order(video: list[np.ndarray], frames: list[np.ndarray]) -> tuple[float, float]:
    """Every video frame i is closest (mean |difference|) to frame i of ``frames``, none missing or
    extra; returns (largest distance to its own frame, smallest distance to another frame)."""
    assert len(video) == len(frames)
    distance = np.array(
        [[np.abs(v.astype(np.float64) - f.astype(np.float64)).mean() for f in frames] for v in video]
    )
    best = distance.argmin(axis=1).tolist()
    assert best == list(range(len(frames))), f"video frame i best matches frame {best}"
    others = distance + np.diag(np.full(len(frames), np.inf))
    return float(np.diag(distance).max()), float(others.min())


def video_files(result) -> dict[str, bytes]:
    return {v["format"]: base64.b64decode(v["data"]) for v in result.info["zs2_videos"]}


def test_zs2_returns_frames_and_videos(zs2_server, tmp_path, measure):
    args = zs2_args()
    log_start = len(zs2_server.log_text())
    result = zs2_server.ok(txt2img_request(args))

    assert len(result.frames) == FRAMES
    assert all(frame.shape == (64, 64, 3) for frame in result.frames)
    assert result.info["seed"] == 1234
    assert len(result.info["all_seeds"]) == FRAMES  # batch_size forced to frames

    videos = result.info["zs2_videos"]
    assert [v["format"] for v in videos] == ["mp4", "gif"], videos
    for video in videos:
        assert video["video"] == 0
        assert video["seed"] == 1234
        assert video["mime_type"] == {"mp4": "video/mp4", "gif": "image/gif"}[video["format"]]
        assert video["filename"].startswith("zs2-1234")
        assert video["filename"].endswith("." + video["format"])
    data = {v["format"]: base64.b64decode(v["data"]) for v in videos}

    # MP4: an ISO BMFF file whose first box is ftyp, with one video frame per frame.
    mp4 = data["mp4"]
    assert mp4[4:8] == b"ftyp", mp4[:16]
    path = tmp_path / "video.mp4"
    path.write_bytes(mp4)
    mp4_frames = decode_mp4(path)
    assert len(mp4_frames) == FRAMES
    assert mp4_frames[0].shape == (64, 64, 3)
    assert ffmetadata(path)["comment"] == result.info["infotexts"][0]
    assert "infotext changed after its first frame" not in zs2_server.log_text()[log_start:]  # no copy
    mp4_error = mean_abs_diff(mp4_frames, result.frames)
    measure(f"mp4: {len(mp4_frames)} frames, mean |mp4 - PNG frames| = {mp4_error:.2f} (0-255)")
    assert mp4_error < 40  # lossy yuv420 of 64x64 noise-like frames, but the same pictures

    # GIF: header, one GIF frame per frame, looping forever, close to the PNGs, the infotext as comment.
    # GIF delays are centiseconds: 1000/8 = 125 ms is written as 10 * round(12.5) = 120 ms (documented
    # in zs2_lib/video.py), i.e. it plays at 8.33 fps.
    gif = data["gif"]
    assert gif[:6] == b"GIF89a", gif[:16]
    gif_frames, gif_info = decode_gif(gif)
    assert len(gif_frames) == FRAMES
    assert gif_frames[0].shape == (64, 64, 3)
    assert gif_info["durations"] == [max(20, 10 * round(100 / 8))] * FRAMES == [120] * FRAMES
    assert gif_info.get("loop") == 0
    comment = gif_info.get("comment", b"")
    assert (comment.decode("utf-8") if isinstance(comment, bytes) else comment) == result.info["infotexts"][0]
    gif_error = mean_abs_diff(gif_frames, result.frames)
    measure(f"gif: {len(gif_frames)} frames, mean |gif - PNG frames| = {gif_error:.2f} (0-255)")
    assert gif_error < 20  # 256-colour palette


def test_videos_hold_every_frame_in_order(zs2_server, tmp_path, measure):
    """Frames that differ a lot (λ 1, μ 0: change ~50 levels, 4x the MP4's error): MP4 and GIF frame i
    must be frame i, so a shift, a swap, a dropped or a doubled frame fails."""
    result = zs2_server.ok(txt2img_request(zs2_args(**{"lambda": 1.0, "mu": 0.0}), seed=2025))
    files = video_files(result)
    (tmp_path / "video.mp4").write_bytes(files["mp4"])
    gif_frames, _ = decode_gif(files["gif"])
    for fmt, video in (("mp4", decode_mp4(tmp_path / "video.mp4")), ("gif", gif_frames)):
        own, other = assert_frames_in_order(video, result.frames)
        measure(
            f"{fmt} frames in order: distance to its own PNG frame at most {own:.1f}, to any other at "
            f"least {other:.1f} (consecutive change {consecutive_change(result.frames):.1f})"
        )


def test_zs2_saves_videos_infotext_and_frames(zs2_server):
    args = zs2_args()
    seed = 4321
    log_start = len(zs2_server.log_text())
    started = time.time()
    result = zs2_server.ok(txt2img_request(args, seed=seed, save_images=True))
    expected = ZS2Params.from_dict(args).to_infotext()

    assert len(result.frames) == FRAMES
    assert result.first == 0  # no grid for ZS² runs: the video takes its place
    frame_infotext = result.info["infotexts"][result.first]
    assert zs2_infotext_value(frame_infotext) == expected, frame_infotext

    # The response's PNG frames carry the infotext with the ZS² settings.
    for raw in result.raw_images[result.first :]:
        assert zs2_infotext_value(png_text(raw).get("parameters", "")) == expected

    # The console names the written files; they lie in <data-dir>/outputs/txt2img-images/zs2/.
    written = wrote_paths(zs2_server.log_text()[log_start:])
    written = [p if p.is_absolute() else zs2_server.webui / p for p in written]
    assert sorted(p.suffix for p in written) == [".gif", ".mp4"], written
    video_dir = zs2_server.data_dir / "outputs" / "txt2img-images" / "zs2"
    for path in written:
        assert path.resolve().parent == video_dir.resolve(), path
        assert path.is_file()
        assert path.stat().st_size > 0
        assert path.name.startswith(f"zs2-{seed}")
    by_suffix = {p.suffix: p for p in written}
    assert by_suffix[".mp4"].read_bytes()[4:8] == b"ftyp"
    assert by_suffix[".gif"].read_bytes()[:6] == b"GIF89a"
    # The API's copies are the same files.
    for video in result.info["zs2_videos"]:
        assert base64.b64decode(video["data"]) == by_suffix["." + video["format"]].read_bytes()

    # One .txt beside the videos holding the first frame's infotext.
    texts = {p.with_suffix(".txt") for p in written}
    assert len(texts) == 1
    text = texts.pop()
    assert text.is_file()
    assert text.read_text(encoding="utf-8") == frame_infotext

    # A1111 saved the PNG frames too, each with the ZS² infotext.
    images_dir = zs2_server.data_dir / "outputs" / "txt2img-images"
    pngs = [
        p
        for p in images_dir.rglob("*.png")
        if p.relative_to(images_dir).parts[0] != "zs2" and p.stat().st_mtime >= started - 1
    ]
    assert len(pngs) == FRAMES, pngs
    for png in pngs:
        with Image.open(png) as image:
            assert zs2_infotext_value(image.info.get("parameters", "")) == expected


def test_identical_requests_give_identical_frames(zs2_server, measure):
    body = txt2img_request(zs2_args(), seed=777)
    first = zs2_server.ok(body)
    second = zs2_server.ok(body)
    assert len(first.frames) == len(second.frames) == FRAMES
    difference = max_abs_diff(first.frames, second.frames)
    measure(f"determinism: max |frame difference| of two identical ZS² requests = {difference}")
    assert difference == 0
    gifs = [next(v["data"] for v in r.info["zs2_videos"] if v["format"] == "gif") for r in (first, second)]
    assert gifs[0] == gifs[1]


def test_batch_count_two_makes_two_videos(zs2_server, measure):
    """n_iter 2: two videos, each exactly the video a single request at its first seed makes."""
    both = zs2_server.ok(txt2img_request(zs2_args(formats=["gif"]), seed=900, n_iter=2))
    assert len(both.frames) == 2 * FRAMES
    videos = both.info["zs2_videos"]
    assert [(v["video"], v["seed"], v["format"]) for v in videos] == [(0, 900, "gif"), (1, 908, "gif")]
    for batch, seed in ((0, 900), (1, 908)):
        alone = zs2_server.ok(txt2img_request(zs2_args(formats=["gif"]), seed=seed))
        frames = both.frames[batch * FRAMES : (batch + 1) * FRAMES]
        difference = max_abs_diff(frames, alone.frames)
        measure(f"n_iter 2: batch {batch} vs a single request at seed {seed}: max diff {difference}")
        assert difference == 0
        gif_frames, _ = decode_gif(base64.b64decode(videos[batch]["data"]))
        assert len(gif_frames) == FRAMES
        assert mean_abs_diff(gif_frames, frames) < 20


def test_hires_fix(zs2_server, measure):
    """With hires fix the frames are upscaled and still one consistent video."""
    hires = {
        "enable_hr": True,
        "hr_scale": 2,
        "hr_upscaler": "Latent",
        "hr_second_pass_steps": 2,
        "denoising_strength": 0.5,
    }
    on = zs2_server.ok(txt2img_request(zs2_args(formats=["gif"]), seed=901, **hires))
    off = zs2_server.ok(txt2img_request(batch_size=FRAMES, seed=901, **hires))
    assert len(on.frames) == len(off.frames) == FRAMES
    assert on.frames[0].shape == (128, 128, 3)
    gif_frames, _ = decode_gif(base64.b64decode(on.info["zs2_videos"][0]["data"]))
    assert len(gif_frames) == FRAMES
    assert gif_frames[0].shape == (128, 128, 3)
    ratio = consecutive_change(on.frames) / consecutive_change(off.frames)
    measure(f"hires fix 2x: consecutive-frame change ratio on/off {ratio:.3f}")
    assert ratio < 0.5
