"""``--hide-ui-dir-config``: the video panel offers no folder button, as A1111 hides its own.

A server of its own (the flag is a command-line option), started only for this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.webui.browser.conftest import open_page, start_ui_server
from tests.webui.browser.test_browser_ui import FRAMES, enable, generate, no_js_errors, sel, type_into
from tests.webui.webui_client import WebuiServer


@pytest.fixture(scope="module")
def hidden_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebuiServer]:
    server = start_ui_server(tmp_path_factory, "ui-hidden", ("--hide-ui-dir-config",))
    try:
        yield server
    finally:
        server.stop()


def test_with_hidden_folders_the_panel_has_no_open_folder_button_and_the_server_no_opener(
    browser: Any, hidden_server: WebuiServer
) -> None:
    ui = open_page(browser, hidden_server)
    page = ui.page
    try:
        assert not page.locator("#txt2img_open_folder").is_visible()  # A1111's own button is hidden too
        enable(page)
        type_into(page, sel("frames") + " input", FRAMES)
        generate(page)
        panel = page.locator("#txt2img_zs2_video_panel")
        panel.locator("video").wait_for(timeout=60_000)
        assert panel.locator("a.zs2-download").count() >= 1  # the panel is there, with its downloads
        assert panel.locator("button.zs2-open-folder").count() == 0
        assert page.locator("[id$='zs2_video_open_folder']").count() == 0
        assert "Send video to img2img" in panel.inner_text()
        no_js_errors(ui)
    finally:
        page.context.close()
