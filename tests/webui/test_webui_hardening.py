"""Hardening (issue 13): what a hostile API client found, each case refused or reported as it should.

Every test here failed on the code before the fix (the notes say how); the numbers they measure are
printed in the host-tier measurements.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import threading
import time
from pathlib import Path

from PIL import Image

from tests.webui.webui_client import FAULT_TITLE, txt2img_request, wrote_paths, zs2_args

REPORT_KEY = "zs2_report"
DEFAULT_CAPS = {"zs2_max_frames": 1024, "zs2_max_chunk_search": 2048}  # zs2_lib/webui/settings.py CAPS
VIDEO_DIR = ("outputs", "txt2img-images", "zs2")


def _set_options(server, values: dict) -> None:
    status, answer = server.post("/sdapi/v1/options", values, timeout=30)
    assert status == 200, answer


def _option(server, key: str):
    status, options = server.get("/sdapi/v1/options")
    assert status == 200, options
    return options.get(key)


def _video_dir(server) -> Path:
    return server.data_dir.joinpath(*VIDEO_DIR)


def _gif_frame_count(entry: dict) -> int:
    with Image.open(io.BytesIO(base64.b64decode(entry["data"]))) as gif:
        return gif.n_frames


def _dead_pid() -> int:
    """The id of a process that has just ended (so no temporary of it can still be in use)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# 1. server-side caps ---------------------------------------------------------------------------


def test_server_caps_refuse_oversized_videos_with_422_before_sampling(zs2_server, measure):
    """Before the fix: no such settings, the 16-frame request answered 200."""
    server = zs2_server
    before = server.hooks()["injector"]["last_rows"]
    _set_options(server, {"zs2_max_frames": 8, "zs2_max_chunk_search": 40})
    try:
        traced = {"ZS2 Fault Injector": {"args": [False, 2, True]}}
        too_long = server.txt2img(txt2img_request(zs2_args(frames=16), alwayson_scripts=traced))
        assert too_long.status == 422, too_long.describe()
        assert "frames" in too_long.detail, too_long.detail
        assert "zs2_max_frames" in too_long.detail, too_long.detail
        assert server.hooks()["injector"]["last_rows"] == before  # not one UNet call
        too_wide = server.txt2img(txt2img_request(zs2_args(frames=8, chunk=8, search=10)))
        assert too_wide.status == 422, too_wide.describe()
        assert "search" in too_wide.detail, too_wide.detail
        assert "zs2_max_chunk_search" in too_wide.detail, too_wide.detail
        fits = server.ok(txt2img_request(zs2_args(frames=8, chunk=4, search=10)))
        assert len(fits.frames) == 8
        measure(f"caps: 16 frames over a cap of 8 → {too_long.status}: {too_long.detail}")
    finally:
        _set_options(server, DEFAULT_CAPS)


# 2. fps every encoder accepts; encoder failures reported -----------------------------------------


def test_an_fps_no_encoder_accepts_is_refused_and_a_failed_write_is_reported(zs2_server, measure):
    """Before the fix: fps 0.001 answered 200 without a video; the write failure only in the console."""
    server = zs2_server
    slow = server.txt2img(txt2img_request(zs2_args(frames=3, fps=0.001, formats=["gif"])))
    assert slow.status == 422, slow.describe()
    assert "fps" in slow.detail, slow.detail

    directory = _video_dir(server)
    directory.parent.mkdir(parents=True, exist_ok=True)
    aside = directory.with_name("zs2-aside")
    if directory.exists():
        directory.rename(aside)
    directory.write_text("a file where the video folder should be")  # mkdir fails
    try:
        result = server.ok(txt2img_request(zs2_args(frames=3, formats=["gif"]), save_images=True))
    finally:
        directory.unlink()
        if aside.exists():
            aside.rename(directory)
    assert len(result.frames) == 3
    report = result.info.get(REPORT_KEY)
    assert report, f"no {REPORT_KEY} in info: {sorted(result.info)}"
    errors = [error for video in report for error in video["errors"]]
    assert any("could not be written" in error for error in errors), report
    measure(f"fps 0.001 → {slow.status}; write failure reported: {errors[0][:100]}")


# 3. settings turned off for a run come back ------------------------------------------------------


def test_settings_zs2_turns_off_come_back_even_without_restore_afterwards(zs2_server, measure):
    """Before the fix: token_merging_ratio stayed 0.0 after the request."""
    server = zs2_server
    _set_options(server, {"token_merging_ratio": 0.5})
    try:
        body = txt2img_request(zs2_args(frames=4), override_settings_restore_afterwards=False)
        server.ok(body)
        after = _option(server, "token_merging_ratio")
        measure(f"token_merging_ratio 0.5, a ZS² run with restore_afterwards false → {after}")
        assert after == 0.5
    finally:
        _set_options(server, {"token_merging_ratio": 0.0})


# 4. Interrupt and Skip, per chunk ------------------------------------------------------------------


def test_skip_during_a_chunk_ends_the_video_there_without_a_hole_and_says_so(zs2_server, measure):
    """Before the fix: the video kept chunks after the skipped one (a hole) and nothing said why."""
    server = zs2_server
    body = txt2img_request(zs2_args(frames=12, chunk=4, formats=["gif"]), seed=31, steps=24)
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("result", server.txt2img(body, timeout=600)))
    thread.start()
    started = time.monotonic()
    state: dict = {}
    while time.monotonic() - started < 120:
        status, progress = server.get("/sdapi/v1/progress?skip_current_image=true", timeout=10)
        state = progress.get("state", {}) if status == 200 else {}
        if state.get("job_no", 0) == 1 and state.get("sampling_step", 0) >= 3:
            break  # the second chunk is sampling
        assert thread.is_alive(), outcome
        time.sleep(0.02)
    status, answer = server.post("/sdapi/v1/skip", timeout=10)
    assert status == 200, answer
    thread.join(600)
    result = outcome["result"]
    assert result.status == 200, result.describe()
    report = result.info.get(REPORT_KEY)
    assert report, f"no {REPORT_KEY} in info: {sorted(result.info)}"
    video = report[0]
    gifs = [entry for entry in result.info["zs2_videos"] if entry["format"] == "gif"]
    measure(f"skip at chunk {state.get('job_no')} step {state.get('sampling_step')}: report {video}")
    assert video["requested"] == 12
    assert video["frames"] == 4, video  # chunk 1 was cut short: the video ends with chunk 0
    assert "Skip" in video["reason"] or "Interrupt" in video["reason"], video
    assert len(gifs) == 1
    assert _gif_frame_count(gifs[0]) == video["frames"]


# 5. an invalid infotext -----------------------------------------------------------------------------


def test_an_invalid_infotext_is_refused_with_422_naming_the_field(zs2_server):
    """Before the fix: 200 and a 16-frame video."""
    infotext = 'a fox\nSteps: 4, Sampler: DDIM, Seed: 3, Size: 64x64, ZS2 Video: "frames=0"'
    result = zs2_server.txt2img(txt2img_request(infotext=infotext))
    assert result.status == 422, result.describe()
    assert "frames" in result.detail, result.detail


# 6. keyframes bounded --------------------------------------------------------------------------------


def test_more_keyframes_than_frames_are_refused(zs2_server, measure):
    """Before the fix: 200, with every keyframe copied into every frame's infotext."""
    many = ", ".join(f"{frame}:0.9" if frame % 2 else f"{frame}:0.95" for frame in range(100))
    result = zs2_server.txt2img(txt2img_request(zs2_args(frames=4, mu=many)))
    assert result.status == 422, result.describe()
    assert "mu" in result.detail, result.detail
    assert "keyframes" in result.detail, result.detail
    fits = zs2_server.ok(txt2img_request(zs2_args(frames=4, mu="0:0.9, 1:0.95, 2:0.9, 3:0.95, 4:0.9")))
    longest = max(len(text) for text in fits.info["infotexts"])
    measure(f"100 μ keyframes for 4 frames → {result.status}; 5 keyframes: longest infotext {longest} chars")
    assert len(fits.frames) == 4


# 7. stale temporaries ---------------------------------------------------------------------------------


def test_stale_temporaries_of_the_extension_are_removed_and_nothing_else(zs2_server):
    """Before the fix: the stale temporaries stayed forever."""
    server = zs2_server
    directory = _video_dir(server)
    directory.mkdir(parents=True, exist_ok=True)
    dead = _dead_pid()
    stale = [
        directory / f".zs2-77.tmp-{dead}-0123abcd.gif",
        directory / f".zs2-77.tmp-{dead}-4567cdef.txt",
    ]
    stale_folder = directory / f".zs2-77.png.tmp-{dead}-89abcdef"
    kept = [
        directory / ".notes.tmp",  # not this extension's naming
        directory / f"zs2-77.tmp-{dead}-0123abcd.gif",  # not hidden
        directory / f".zs2-78.tmp-{os.getpid()}-0123abcd.gif",  # its process is alive
    ]
    for path in stale + kept:
        path.write_bytes(b"partial")
    stale_folder.mkdir()
    (stale_folder / "00000.png").write_bytes(b"partial")
    try:
        server.ok(txt2img_request(zs2_args(frames=2, formats=["gif"]), save_images=True))
        assert not any(path.exists() for path in stale), [p.name for p in stale if p.exists()]
        assert not stale_folder.exists()
        assert all(path.exists() for path in kept), [p.name for p in kept if not p.exists()]
    finally:
        for path in kept:
            path.unlink(missing_ok=True)


def test_a_run_failing_in_its_second_chunk_leaves_no_file_and_no_encoder_of_its_first(zs2_server, measure):
    """The first chunk's frames are being encoded (MP4, WebM) when the second chunk's UNet raises: the
    run's undo stack stops the encoders and removes their files."""
    server = zs2_server
    outputs = _video_dir(server).parent
    before = set(outputs.rglob("*")) if outputs.exists() else set()
    fault = {FAULT_TITLE: {"args": [True, 6]}}  # Euler a, 4 steps, cond and uncond in one call: chunk 2
    zs2 = zs2_args(frames=8, chunk=4, formats=["mp4", "webm"])
    failed = server.txt2img(txt2img_request(zs2, seed=559, save_images=True, alwayson_scripts=fault))
    assert failed.status == 500, failed.describe()
    assert "injected failure at UNet call 6" in str(failed.body), failed.describe()
    new = sorted(path.relative_to(outputs) for path in set(outputs.rglob("*")) - before)
    encoders = _children(server.process.pid, "ffmpeg")  # imageio-ffmpeg's is ffmpeg-<platform>-<version>
    measure(f"failed in chunk 2: new under outputs {[str(path) for path in new]}, ffmpeg left {encoders}")
    assert len([path for path in new if path.suffix == ".png"]) == 4  # chunk 1 reached the frames' hook
    assert not [path for path in new if path.parts[0] == VIDEO_DIR[-1] and len(path.parts) > 1]  # no file
    assert encoders == []


def _children(pid: int, name: str) -> list[int]:
    """Running processes whose name starts with ``name`` and whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            command = fields[0].split("(", 1)[1]
        except (OSError, IndexError):
            continue
        if command.startswith(name) and int(fields[1].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return found


# 8. refused before the prompt is encoded and params.txt written ------------------------------------


def test_a_refused_request_leaves_params_txt_untouched(zs2_server):
    """Before the fix: the refused request's prompt was in params.txt."""
    server = zs2_server
    server.ok(txt2img_request(prompt="the last accepted prompt"))
    params = server.data_dir / "params.txt"
    assert "the last accepted prompt" in params.read_text(encoding="utf-8")
    refused = server.txt2img(txt2img_request(zs2_args(frames=0), prompt="a refused prompt"))
    assert refused.status == 422, refused.describe()
    text = params.read_text(encoding="utf-8")
    assert "a refused prompt" not in text, text
    assert "the last accepted prompt" in text, text


# 9. X/Y/Z plot -------------------------------------------------------------------------------------


def test_every_xyz_cell_video_is_returned_and_saved(zs2_server, measure):
    """Before the fix: only the first cell's video reached the response."""
    server = zs2_server
    seeds = [41, 42, 43]
    xyz = [
        1,
        ",".join(map(str, seeds)),
        [],
        0,
        "",
        [],
        0,
        "",
        [],
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        0,
        False,
    ]
    body = txt2img_request(
        zs2_args(frames=3, formats=["gif"]), script_name="x/y/z plot", script_args=xyz, save_images=True
    )
    log_start = len(server.log_text())
    result = server.ok(body)
    entries = result.info.get("zs2_videos", [])
    written = wrote_paths(server.log_text()[log_start:])
    measure(f"X/Y/Z plot over 3 seeds: {len(entries)} videos in the response, {len(written)} written")
    assert sorted(entry["seed"] for entry in entries) == seeds, entries
    assert len(written) == 3
    assert all((path if path.is_absolute() else server.webui / path).is_file() for path in written)
    assert len(result.info["infotexts"]) == len(seeds) + 1  # the grid result's own info: cells and grid
