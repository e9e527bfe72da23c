"""The full page in Chromium, as a new user uses it: what issue 12's user stumbled on is gone.

Each test drives the ``ui`` server's page (``conftest.py``): the simple panel and its Advanced
accordion, the video panel above the results (first, labelled, readable, with download links and
an MP4 of 2F−1 frames after interpolation ×2), sending the video to img2img, a frame's PNG Info
leading back to its video, Interrupt and spare frames said in the results, refusals that name the
control as labelled, and 2000 frames explained rather than cut to 1024. Every test also checks that
the page reported no JavaScript error.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.webui.browser.conftest import Page, open_page
from tests.webui.webui_client import WebuiServer

FRONT = ("frames", "fps", "lambda", "mu", "lambda_stops", "mu_stops", "preset")
ADVANCED = ("chunk", "noise_model", "search", "solver", "debias", "step_noise", "formats", "loop")
ADVANCED += ("interpolate", "target_fps", "interpolator", "control_video")
FRAMES = 8
SEED = 42


def sel(name: str, tab: str = "txt2img") -> str:
    return f"#script_{tab}_zs2_video_{name}"


def enable(page: Any, tab: str = "txt2img") -> None:
    """Open the ZS² accordion, which ticks it (A1111's InputAccordion)."""
    if not page.locator(sel("enabled", tab) + "-visible-checkbox").is_checked():
        page.locator(sel("enabled", tab) + " .label-wrap").first.click()
    page.wait_for_selector(sel("frames", tab) + " input", state="visible")
    assert page.locator(sel("enabled", tab) + "-visible-checkbox").is_checked()


def type_into(page: Any, selector: str, value: Any) -> None:
    box = page.locator(selector)
    box.fill(str(value))
    box.press("Tab")


def wait_value(page: Any, selector: str, value: str) -> None:
    """Wait until the input at ``selector`` holds ``value`` (events go through the server)."""
    page.wait_for_function(
        "([s, v]) => document.querySelector(s).value === v", arg=[selector, value], timeout=30_000
    )


def open_advanced(page: Any, tab: str = "txt2img") -> None:
    page.locator(sel("advanced", tab) + " .label-wrap").first.click()
    page.wait_for_selector(sel("chunk", tab), state="visible")


def choose(page: Any, name: str, option: str, tab: str = "txt2img") -> None:
    """Pick ``option`` in a dropdown."""
    page.locator(sel(name, tab) + " input").click()
    page.locator(sel(name, tab) + " li", has_text=option).first.click()


def below_results(page: Any, tab: str = "txt2img") -> str:
    return page.locator(f"#html_log_{tab}").last.inner_text()


def generate(page: Any, tab: str = "txt2img", timeout: float = 300_000) -> str:
    """Click Generate, wait for the run to end; returns the text below the results."""
    before = below_results(page, tab)
    page.locator(f"#{tab}_generate").click()
    page.wait_for_function(
        """([selector, before]) => {
            const log = [...document.querySelectorAll(selector)].pop();
            return log && log.innerText !== before && log.innerText.includes("Time taken");
        }""",
        arg=[f"#html_log_{tab}", before],
        timeout=timeout,
    )
    return below_results(page, tab)


def gallery_count(page: Any, tab: str = "txt2img") -> int:
    return page.locator(f"#{tab}_gallery .grid-wrap .thumbnail-item").count()


def log_since(server: WebuiServer, mark: int) -> str:
    return server.log_text()[mark:]


def no_js_errors(ui: Page) -> None:
    assert ui.errors == [], ui.errors


def mp4_frames(data: bytes, folder: Path) -> int:
    import imageio

    path = folder / "served.mp4"
    path.write_bytes(data)
    with imageio.get_reader(str(path), "ffmpeg") as reader:
        return sum(1 for _ in reader)


# the simple panel ------------------------------------------------------------------------------


def test_the_simple_panel_shows_only_frames_fps_motion_and_consistency_and_advanced_opens(ui: Page) -> None:
    page = ui.page
    enable(page)
    for name in FRONT:
        assert page.locator(sel(name)).is_visible(), name
    for name in ADVANCED:
        assert not page.locator(sel(name)).is_visible(), name
    ui.screenshot("simple-panel", page.locator(sel("enabled")))

    page.locator(sel("lambda_stops") + " label", has_text="lively").click()  # a stop sets λ
    wait_value(page, sel("lambda") + " textarea", "0.1")
    type_into(page, sel("mu") + " textarea", "0.95")  # the box selects its stop
    page.wait_for_function(
        "(s) => document.querySelector(s).checked", arg=sel("mu_stops") + " input[value='0.95']"
    )
    type_into(page, sel("lambda") + " textarea", "0:0.01, 8:0.1")  # keyframes: no stop
    page.wait_for_function(
        "(s) => ![...document.querySelectorAll(s)].some(i => i.checked)", arg=sel("lambda_stops") + " input"
    )

    open_advanced(page)
    for name in ADVANCED:
        assert page.locator(sel(name)).is_visible(), name
    ui.screenshot("advanced-panel", page.locator(sel("enabled")))
    no_js_errors(ui)


# refusals --------------------------------------------------------------------------------------


def test_a_bad_value_is_refused_by_its_label_and_range_without_class_name_or_traceback(ui: Page) -> None:
    page, server = ui.page, ui.server
    enable(page)
    type_into(page, sel("mu") + " textarea", "2")
    mark = len(server.log_text())
    shown = generate(page)
    assert "ZS² Video: Consistency μ (mu): " in shown, shown
    assert "is out of range" in shown, shown
    assert "0 to 1" in shown, shown
    for unwanted in ("RequestError", "Traceback", "Error completing request", "lambda"):
        assert unwanted not in shown, (unwanted, shown)
        assert unwanted not in page.locator("#txt2img_results").inner_text(), unwanted
    log = log_since(server, mark)
    assert "Consistency μ (mu)" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert gallery_count(page) == 0  # nothing was made
    ui.screenshot("refusal", page.locator("#txt2img_results"))
    no_js_errors(ui)


def test_typing_2000_frames_keeps_2000_and_the_refusal_names_the_servers_setting(ui: Page) -> None:
    page, server = ui.page, ui.server
    enable(page)
    type_into(page, sel("frames") + " input", 2000)
    assert page.locator(sel("frames") + " input").input_value() == "2000"  # not clamped to 1024
    mark = len(server.log_text())
    shown = generate(page)
    assert "ZS² Video: Frames (frames): 2000 is over this server's limit (accepted: 1 to 1024" in shown, shown
    assert "zs2_max_frames" in shown
    assert page.locator(sel("frames") + " input").input_value() == "2000"
    assert "Traceback" not in log_since(server, mark)
    no_js_errors(ui)


# a run with interpolation ×2 and what follows it -----------------------------------------------


@pytest.fixture(scope="module")
def ran(browser: Any, ui_server: WebuiServer) -> Any:
    """One txt2img run of 8 frames, seed 42, interpolation ×2, playback once; the page stays open."""
    ui = open_page(browser, ui_server)
    page = ui.page
    enable(page)
    type_into(page, sel("frames") + " input", FRAMES)
    type_into(page, "#txt2img_seed input", SEED)
    type_into(page, "#txt2img_prompt textarea", "a red fox running through snow")
    open_advanced(page)
    page.locator(sel("interpolate") + " label", has_text="2").click()
    choose(page, "loop", "once")
    shown = generate(page)
    page.wait_for_selector("#txt2img_zs2_video_panel video", timeout=60_000)
    yield ui, shown
    page.context.close()


def test_the_video_comes_first_labelled_at_a_readable_size_with_download_links(ran: Any) -> None:
    ui, shown = ran
    page = ui.page
    panel = page.locator("#txt2img_zs2_video_panel")
    video, gallery = panel.locator("video"), page.locator("#txt2img_gallery")
    assert video.bounding_box()["y"] < gallery.bounding_box()["y"]  # above the frames
    size = video.bounding_box()
    assert size["width"] >= 256, size  # the file is 64 px wide
    heading = panel.locator("h3").inner_text()
    expected = f"ZS² Video: video 0 · seed {SEED} · {FRAMES} frames at 8 fps · interpolated ×2 to 16 fps"
    assert heading == expected
    links = panel.locator("a.zs2-download")
    assert links.all_inner_texts() == ["Download MP4", "Download GIF"]
    for link in links.all():
        assert link.get_attribute("href").startswith("file=")
        assert link.get_attribute("download").startswith(f"zs2-{SEED}")
    assert gallery_count(page) == FRAMES  # the GIF is in the panel, not hidden as a last thumbnail
    data_dir = str(ui.server.data_dir)
    assert data_dir not in shown
    assert data_dir not in panel.inner_text()
    saved = rf"saved as zs2-{SEED}-\d+\.mp4, zs2-{SEED}-\d+\.gif in outputs/txt2img-images/zs2"
    assert re.search(saved, shown), shown
    ui.screenshot("video-panel", page.locator("#txt2img_results"))
    no_js_errors(ui)


def test_open_folder_asks_the_server_to_open_the_tabs_video_folder(ran: Any) -> None:
    ui, _ = ran
    mark = len(ui.server.log_text())
    ui.page.locator("#txt2img_zs2_video_panel button.zs2-open-folder").click()
    ui.page.wait_for_function("() => true")
    deadline = time.monotonic() + 30
    while "opening the video folder" not in log_since(ui.server, mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    folder = ui.server.data_dir / "outputs" / "txt2img-images" / "zs2"
    assert f"ZS² Video: opening the video folder {folder}" in log_since(ui.server, mark)
    no_js_errors(ui)


def test_the_served_mp4_of_an_interpolated_run_has_2f_minus_1_frames(ran: Any, tmp_path: Path) -> None:
    ui, _ = ran
    page = ui.page
    href = page.locator("#txt2img_zs2_video_panel a.zs2-download", has_text="MP4").get_attribute("href")
    served = page.request.get(f"{ui.server.url}/{href}")
    assert served.status == 200
    assert served.headers["content-type"] == "video/mp4"
    assert mp4_frames(served.body(), tmp_path) == 2 * FRAMES - 1
    playing = page.evaluate("() => document.querySelector('#txt2img_zs2_video_panel video').readyState")
    assert playing >= 2  # the player has decoded the file
    no_js_errors(ui)


def test_a_frames_png_info_sent_to_txt2img_restores_the_videos_seed_and_the_frame_index(ran: Any) -> None:
    ui, _ = ran
    page, server = ui.page, ui.server
    frame = 4  # seed 42 + 4 = 46 in its file name, as A1111 names frames
    files = sorted((server.data_dir / "outputs" / "txt2img-images").glob(f"*/*-{SEED + frame}.png"))
    assert files, "frame 4 was not saved"
    type_into(page, "#txt2img_seed input", 1)  # so that the seed must come back from the infotext
    page.locator("#tabs button", has_text="PNG Info").first.click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(files[-1]))
    page.wait_for_function(
        "() => [...document.querySelectorAll('#pnginfo_generation_info textarea')].some(t => t.value)"
        " || document.body.innerText.includes('ZS2 frame: 4')",
        timeout=60_000,
    )
    text = page.locator("#tab_pnginfo").inner_text()
    assert f"Seed: {SEED}," in text, text
    assert "ZS2 frame: 4" in text, text
    page.locator("#tab_pnginfo #txt2img_tab").click()
    page.wait_for_function(
        "(seed) => document.querySelector('#txt2img_seed input').value === seed",
        arg=str(SEED),
        timeout=30_000,
    )
    assert page.locator(sel("frames") + " input").input_value() == str(FRAMES)
    assert page.locator(sel("interpolate") + " input[value='2']").is_checked()
    no_js_errors(ui)


def test_send_to_img2img_fills_its_video_input_and_img2img_plays_its_result(ran: Any) -> None:
    ui, _ = ran
    page = ui.page
    page.locator("#tabs button", has_text="txt2img").first.click()
    mp4 = page.locator("#txt2img_zs2_video_panel a.zs2-download", has_text="MP4").get_attribute("download")
    page.locator("#txt2img_zs2_video_panel button.zs2-send").click()
    page.wait_for_selector("#img2img_generate", state="visible")
    path = page.locator(sel("video", "img2img") + " textarea").input_value()
    assert Path(path).name == mp4
    assert Path(path).is_file()
    assert page.locator(sel("enabled", "img2img") + "-visible-checkbox").is_checked()
    shown = generate(page, "img2img")
    page.wait_for_selector("#img2img_zs2_video_panel video", timeout=60_000)
    heading = page.locator("#img2img_zs2_video_panel h3").inner_text()
    assert f"{2 * FRAMES - 1} frames" in heading, (heading, shown)  # one frame per source frame
    ui.screenshot("img2img-from-txt2img", page.locator("#img2img_results"))
    no_js_errors(ui)


# interrupt and spare frames --------------------------------------------------------------------


def _interrupt_during_chunk(ui: Page, chunk: int, at_once: bool) -> str:
    """Generate and click Interrupt once chunk ``chunk`` (0-based) is sampling; returns the results' text.

    A1111's first click stops after the current batch (chunk); ``at_once`` clicks again ("Interrupting...",
    which stops at once), so the chunk is cut short mid-sampling."""
    page, server = ui.page, ui.server
    before = below_results(page)
    page.locator("#txt2img_generate").click()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        _, progress = server.get("/sdapi/v1/progress?skip_current_image=true", timeout=10)
        state = progress["state"]
        if state.get("job_no", 0) == chunk and state.get("sampling_step", 0) >= 2:
            break
        time.sleep(0.05)
    page.locator("#txt2img_interrupt").click()
    if at_once:
        page.locator("#txt2img_interrupting").click()
    page.wait_for_function(
        "([s, b]) => { const l = [...document.querySelectorAll(s)].pop(); "
        "return l && l.innerText !== b && l.innerText.includes('Time taken'); }",
        arg=["#html_log_txt2img", before],
        timeout=300_000,
    )
    return below_results(page)


@pytest.mark.parametrize("at_once", [False, True], ids=["after-the-chunk", "at-once"])
def test_after_interrupt_the_results_say_the_video_is_shorter_and_the_gallery_matches_it(
    ui: Page, at_once: bool
) -> None:
    page = ui.page
    enable(page)
    type_into(page, sel("frames") + " input", 24)
    type_into(page, "#txt2img_steps input[type=number]", 16)
    open_advanced(page)
    type_into(page, sel("chunk") + " input[type=number]", 4)
    shown = _interrupt_during_chunk(ui, 2, at_once)
    match = re.search(r"video 0: (\d+) of 24 frames: Interrupt", shown)
    assert match, shown
    kept = int(match.group(1))
    assert kept % 4 == 0  # whole chunks only
    assert 0 < kept < 24
    note = page.locator("#txt2img_zs2_video_panel .zs2-note").inner_text()
    assert note.startswith(f"Shorter than asked: {kept} of 24 frames. Interrupt")
    if at_once:  # the cut chunk's half-denoised frames, which A1111 returns, are not shown
        assert f"Interrupt during chunk {kept // 4 + 1} of 6" in shown, shown
        assert "4 image(s) not in the video are left out of the gallery" in shown, shown
    assert gallery_count(page) == kept
    ui.screenshot(
        f"interrupted-{'at-once' if at_once else 'after-the-chunk'}", page.locator("#txt2img_results")
    )
    no_js_errors(ui)


def test_frames_not_a_multiple_of_the_chunk_keep_gallery_and_video_equal_and_say_so(ui: Page) -> None:
    page = ui.page
    enable(page)
    type_into(page, sel("frames") + " input", 10)
    open_advanced(page)
    type_into(page, sel("chunk") + " input[type=number]", 4)
    shown = generate(page)
    said = "2 image(s) not in the video are left out of the gallery: 3 chunks of 4 make 2 frame(s) more"
    assert said in shown, shown
    page.wait_for_selector("#txt2img_zs2_video_panel video")
    assert "10 frames at 8 fps" in page.locator("#txt2img_zs2_video_panel h3").inner_text()
    assert gallery_count(page) == 10
    no_js_errors(ui)


# a video uploaded into img2img --------------------------------------------------------------------


def test_a_video_uploaded_in_img2img_fills_the_video_input_and_every_source_frame_is_restyled(
    ui: Page, tmp_path: Path
) -> None:
    """The user's way in: choose an MP4 in the upload box (no path typed); 6 source frames, 6 outputs."""
    import numpy as np

    from tests.video_writers import write_video
    from tests.webui.test_webui_img2img import source_frames

    clip = tmp_path / "my clip.mp4"
    write_video(np.stack(source_frames(6)), clip, fps=6)
    page = ui.page
    page.locator("#tabs button", has_text="img2img").first.click()
    enable(page, "img2img")
    page.locator(sel("upload", "img2img") + " input[type=file]").set_input_files(str(clip))
    page.wait_for_function(
        "s => document.querySelector(s).value.endsWith('.mp4')",
        arg=sel("video", "img2img") + " textarea",
        timeout=60_000,
    )
    shown = generate(page, "img2img")
    page.wait_for_selector("#img2img_zs2_video_panel video", timeout=60_000)
    heading = page.locator("#img2img_zs2_video_panel h3").inner_text()
    assert "6 frames at 6 fps" in heading, (heading, shown)  # the source's count and rate
    assert gallery_count(page, "img2img") == 6
    no_js_errors(ui)
