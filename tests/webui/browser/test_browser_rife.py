"""The Interpolator dropdown offers ``rife`` only where its weights are; a run with it plays 2F−1 frames.

A server of its own, started with a random-weight RIFE 3.x checkpoint in its ``models/RIFE/`` (the
dropdown is built with the page), only for this module; the shared ``ui`` server has no weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.webui.browser.conftest import Page, open_page, start_ui_server
from tests.webui.browser.test_browser_ui import (
    FRAMES,
    choose,
    enable,
    generate,
    mp4_frames,
    no_js_errors,
    open_advanced,
    sel,
    type_into,
)
from tests.webui.webui_client import WebuiServer


def _place_weights(data_dir: Path) -> None:
    from tests.test_rife import write_random_weights

    write_random_weights(data_dir / "models" / "RIFE" / "flownet.pkl", seed=7)


@pytest.fixture(scope="module")
def rife_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebuiServer]:
    server = start_ui_server(tmp_path_factory, "ui-rife", prepare=_place_weights)
    try:
        yield server
    finally:
        server.stop()


def dropdown_options(page: Any, name: str) -> list[str]:
    """The options a dropdown lists when opened (then closed again)."""
    page.locator(sel(name) + " input").click()
    page.locator(sel(name) + " li").first.wait_for(timeout=10_000)
    options = [text.replace("✓", "").strip() for text in page.locator(sel(name) + " li").all_inner_texts()]
    page.locator(sel(name) + " input").blur()  # closes the list
    page.locator(sel(name) + " li").first.wait_for(state="detached", timeout=10_000)
    return options


def test_without_weights_the_interpolator_dropdown_offers_only_opencv(ui: Page) -> None:
    enable(ui.page)
    open_advanced(ui.page)
    assert dropdown_options(ui.page, "interpolator") == ["opencv"]
    no_js_errors(ui)


def test_with_weights_the_dropdown_offers_rife_and_a_run_with_it_plays_2f_minus_1_frames(
    browser: Any, rife_server: WebuiServer, tmp_path: Path
) -> None:
    ui = open_page(browser, rife_server)
    page = ui.page
    try:
        enable(page)
        type_into(page, sel("frames") + " input", FRAMES)
        open_advanced(page)
        assert dropdown_options(page, "interpolator") == ["opencv", "rife"]
        choose(page, "interpolator", "rife")
        page.locator(sel("interpolate") + " label", has_text="2").click()
        choose(page, "loop", "once")
        generate(page)
        panel = page.locator("#txt2img_zs2_video_panel")
        panel.locator("video").wait_for(timeout=60_000)
        href = panel.locator("a.zs2-download", has_text="MP4").get_attribute("href")
        served = page.request.get(f"{rife_server.url}/{href}")
        assert served.status == 200
        assert mp4_frames(served.body(), tmp_path) == 2 * FRAMES - 1
        assert "interpolator=rife" in page.locator("#html_info_txt2img").last.inner_text()
        no_js_errors(ui)
    finally:
        page.context.close()
