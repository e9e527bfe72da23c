"""Long videos in chunks against a real A1111: exact joins, schedules, hires fix, interrupt."""

from __future__ import annotations

import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tests.webui.test_webui_off_and_recovery import HOOK_COUNTS
from tests.webui.test_webui_video import assert_frames_in_order, decode_gif, decode_mp4, video_files
from tests.webui.webui_client import consecutive_change, max_abs_diff, txt2img_request, zs2_args

# Chunked and one-batch runs do the same per-frame arithmetic; the only possible difference is a
# kernel whose floating-point result depends on the batch size, which would move a pixel by at most
# one level after rounding to uint8. Measured: 0 (DDIM, Euler a, hires fix), 1 with a μ schedule.
JOIN_TOLERANCE = 1


def video_frames(result, fmt: str = "gif") -> int:
    entry = next(v for v in result.info["zs2_videos"] if v["format"] == fmt)
    with Image.open(io.BytesIO(base64.b64decode(entry["data"]))) as image:
        return image.n_frames


@pytest.mark.parametrize("sampler", ["DDIM", "Euler a"])
def test_forty_frames_in_chunks_of_eight_equal_one_batch(zs2_server, sampler, measure):
    body = {"sampler_name": sampler, "steps": 6, "seed": 2024}
    whole = zs2_server.ok(txt2img_request(zs2_args(frames=40, chunk=40), **body))
    chunked = zs2_server.ok(txt2img_request(zs2_args(frames=40, chunk=8), **body))
    assert len(whole.frames) == len(chunked.frames) == 40
    diff = max_abs_diff(chunked.frames, whole.frames)
    measure(f"{sampler}: 40 frames in 5 chunks of 8 vs one batch: max diff {diff}")
    assert diff <= JOIN_TOLERANCE
    assert video_frames(chunked) == 40
    assert [v["format"] for v in chunked.info["zs2_videos"]] == ["mp4", "gif"]


def test_a_forty_frame_video_in_chunks_holds_every_frame_in_order(zs2_server, tmp_path, measure):
    """λ 1, μ 0: frames that differ; MP4 and GIF frame i best match PNG frame i across all 5 chunks."""
    body = {"sampler_name": "DDIM", "steps": 4, "seed": 2026}
    result = zs2_server.ok(
        txt2img_request(zs2_args(frames=40, chunk=8, **{"lambda": 1.0, "mu": 0.0}), **body)
    )
    assert len(result.frames) == 40
    files = video_files(result)
    (tmp_path / "video.mp4").write_bytes(files["mp4"])
    gif_frames, _ = decode_gif(files["gif"])
    for fmt, video in (("mp4", decode_mp4(tmp_path / "video.mp4")), ("gif", gif_frames)):
        own, other = assert_frames_in_order(video, result.frames)
        measure(f"40 frames, {fmt} in order: own frame at most {own:.1f}, any other at least {other:.1f}")


def test_uneven_chunks_leave_the_spare_frames_out_of_the_video(zs2_server):
    whole = zs2_server.ok(txt2img_request(zs2_args(frames=40, chunk=40), steps=4, seed=7))
    uneven = zs2_server.ok(txt2img_request(zs2_args(frames=40, chunk=16), steps=4, seed=7))
    assert len(uneven.frames) == 42  # 3 balanced chunks of 14
    assert max_abs_diff(uneven.frames[:40], whole.frames) <= JOIN_TOLERANCE
    assert video_frames(uneven) == 40


def test_schedules_hit_their_frames_across_chunk_boundaries(zs2_server, measure):
    schedule = {"lambda": "0:0.001, 12:0.001, 13:0.5", "mu": "0:0.98, 23:0.5"}
    body = {"steps": 6, "seed": 77, "sampler_name": "DDIM"}
    whole = zs2_server.ok(txt2img_request(zs2_args(frames=24, chunk=24, **schedule), **body))
    chunked = zs2_server.ok(txt2img_request(zs2_args(frames=24, chunk=5, **schedule), **body))
    diff = max_abs_diff(chunked.frames[:24], whole.frames)
    steps = [consecutive_change(chunked.frames[i : i + 2]) for i in range(23)]
    calm, jump = np.mean(steps[:12]), steps[12]
    measure(
        f"schedule across chunks of 5: max diff vs one batch {diff}; "
        f"change before frame 13 {calm:.1f}, at it {jump:.1f}"
    )
    assert diff <= JOIN_TOLERANCE
    assert jump > 5 * calm  # λ jumps from 0.001 to 0.5 exactly at frame 13 (inside the third chunk)
    assert max(steps[:12]) < jump / 3


HIRES_REQUEST = {
    "enable_hr": True,
    "hr_scale": 2,
    "hr_upscaler": "Latent",
    "denoising_strength": 0.6,
    "hr_second_pass_steps": 4,
    "steps": 4,
    "sampler_name": "DDIM",
    "seed": 5,
}


def test_hires_fix_in_chunks_is_consistent_and_joins(zs2_server, measure):
    whole = zs2_server.ok(txt2img_request(zs2_args(frames=16, chunk=16), **HIRES_REQUEST))
    chunked = zs2_server.ok(txt2img_request(zs2_args(frames=16, chunk=8), **HIRES_REQUEST))
    off = zs2_server.ok(txt2img_request(batch_size=16, **HIRES_REQUEST))
    assert whole.frames[0].shape == (128, 128, 3)
    diff = max_abs_diff(chunked.frames, whole.frames)
    ratio = consecutive_change(chunked.frames) / consecutive_change(off.frames)
    measure(f"hires fix in chunks of 8 vs one batch: max diff {diff}; change ratio on/off {ratio:.3f}")
    assert diff <= JOIN_TOLERANCE
    assert ratio < 0.5


def signal_during_chunk(server, body, chunk: int, endpoint: str):
    """Run ``body`` and POST ``endpoint`` (interrupt or skip) once chunk ``chunk`` is sampling."""
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=server.txt2img(body, timeout=600)), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _, progress = server.get("/sdapi/v1/progress?skip_current_image=true", timeout=10)
        state = progress["state"]
        if state.get("job_no", 0) == chunk and state.get("sampling_step", 0) >= 2:
            break
        assert thread.is_alive(), outcome
        time.sleep(0.02)
    server.post(endpoint, timeout=10)
    thread.join(300)
    result = outcome["result"]
    assert result.status == 200, result.describe()
    return result


def test_interrupt_mid_run_keeps_a_playable_video_of_the_finished_chunks(zs2_server, measure):
    server = zs2_server
    clean = {key: server.hooks()[key] for key in HOOK_COUNTS}
    request = {"steps": 12, "seed": 9, "sampler_name": "DDIM"}
    result = signal_during_chunk(
        server, txt2img_request(zs2_args(frames=40, chunk=8), **request), 2, "/sdapi/v1/interrupt"
    )
    made = video_frames(result)
    measure(f"interrupt in chunk 3 of 5: {len(result.frames)} images, video of {made} frames")
    assert made == 16  # the two finished chunks; the cut one is half-denoised and left out
    shorter = server.ok(txt2img_request(zs2_args(frames=made, chunk=8), **request))
    assert max_abs_diff(result.frames[:made], shorter.frames) == 0
    assert {key: server.hooks()[key] for key in HOOK_COUNTS} == clean


def test_skip_drops_the_current_chunk_and_goes_on(zs2_server, measure):
    request = {"steps": 12, "seed": 19, "sampler_name": "DDIM"}
    body = txt2img_request(zs2_args(frames=40, chunk=8), **request)
    result = signal_during_chunk(zs2_server, body, 1, "/sdapi/v1/skip")
    whole = zs2_server.ok(body)
    made = video_frames(result)
    measure(f"skip in chunk 2 of 5: {len(result.frames)} images, video of {made} frames")
    assert len(result.frames) == 40
    assert made == 8  # the video ends before the skipped chunk: it never has a hole (issue 13)
    assert max_abs_diff(result.frames[:8], whole.frames[:8]) == 0
    assert max_abs_diff(result.frames[8:16], whole.frames[8:16]) > 0  # the skipped chunk stopped early


def frame_quality(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-frame detail (mean |Laplacian|), contrast (pixel std) and clipping (share of 0/255 pixels).

    Noise that drifts out of N(0, I) shows up in exactly these: speckles raise the Laplacian energy,
    out-of-range values clip, and washed-out frames lose contrast.
    """
    grey = np.stack(frames).astype(np.float64).mean(-1)
    laplacian = (
        4 * grey[:, 1:-1, 1:-1]
        - grey[:, :-2, 1:-1]
        - grey[:, 2:, 1:-1]
        - grey[:, 1:-1, :-2]
        - grey[:, 1:-1, 2:]
    )
    stack = np.stack(frames)
    return {
        "detail": np.abs(laplacian).mean(axis=(1, 2)),
        "contrast": grey.std(axis=(1, 2)),
        "clipping": ((stack == 0) | (stack == 255)).mean(axis=(1, 2, 3)),
    }


def test_quality_does_not_decay_along_a_long_video(zs2_server, measure):
    result = zs2_server.ok(
        txt2img_request(
            zs2_args(frames=256, chunk=16, formats=["gif"]), steps=4, seed=3, sampler_name="DDIM"
        ),
        timeout=900,
    )
    assert len(result.frames) == 256
    frames = np.arange(256)
    for name, values in frame_quality(result.frames).items():
        trend = np.polyfit(frames, values, 1)[0] * 256 / max(values.mean(), 1e-9)
        first, last = values[:64].mean(), values[-64:].mean()
        measure(
            f"256 frames, {name}: first 64 {first:.4g}, last 64 {last:.4g}, trend over the video {trend:+.3f}"
        )
        assert abs(trend) < 0.15, name  # less than 15 % change from start to end, either way


def test_progress_counts_chunks_and_the_live_preview_updates(zs2_server, measure):
    """A1111's progress (what its bar and live preview poll) during a chunked ZS² run."""
    body = txt2img_request(zs2_args(frames=24, chunk=8), steps=20, seed=21, sampler_name="DDIM")
    outcome: dict = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=zs2_server.txt2img(body, timeout=600)), daemon=True
    )
    thread.start()
    seen_jobs, progress_values, previews = set(), [], 0
    while thread.is_alive():
        _, answer = zs2_server.get("/sdapi/v1/progress", timeout=10)
        state = answer["state"]
        if state.get("job_count", 0) > 0:
            seen_jobs.add((state["job_no"], state["job_count"]))
            progress_values.append(answer["progress"])
            previews += answer.get("current_image") is not None
        time.sleep(0.05)
    thread.join()
    assert outcome["result"].status == 200
    measure(f"progress during 3 chunks: jobs seen {sorted(seen_jobs)}, {previews} polls with a live preview")
    assert {count for _, count in seen_jobs} == {3}  # the bar counts the chunks as A1111 batches
    assert len({job for job, _ in seen_jobs}) >= 2
    assert max(progress_values) > min(progress_values)
    assert previews > 0
