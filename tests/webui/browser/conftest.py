"""Browser tests: the full A1111 page with the extension, driven by Playwright and Chromium.

Enabled like the rest of the host tier by ``ZS2_WEBUI`` (and ``ZS2_WEBUI_PYTHON``); they also need
the ``playwright`` package in the Python running pytest and a Chromium: ``ZS2_CHROMIUM=<binary>``,
else ``chromium`` on the PATH (Debian's ``apt-get install chromium``; ``playwright install`` is not
needed). Without any of them these tests are skipped.

One server, ``ui``, starts for them with the page (no ``--nowebui``) on its own free port and data
dir, through the same :class:`~tests.webui.webui_client.WebuiServer` as the API-only servers; its
``ui-config.json`` sets 64×64 images and 4 steps in both tabs, the tiny checkpoint's size.
``ZS2_SCREENSHOTS=<folder>`` saves the tests' screenshots there (the ones in ``docs/screenshots``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.webui.conftest import _write_config, webui_python, webui_root
from tests.webui.webui_client import START_TIMEOUT, WebuiServer, install_extension

SMALL_IMAGES = {
    key.format(tab=tab): value
    for tab in ("txt2img", "img2img")
    for key, value in (
        ("{tab}/Width/value", 64),
        ("{tab}/Height/value", 64),
        ("customscript/sampler.py/{tab}/Sampling steps/value", 4),
    )
}


def chromium_path() -> str | None:
    return os.environ.get("ZS2_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def start_ui_server(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    extra_args: tuple[str, ...] = (),
    prepare: Callable[[Path], Any] | None = None,
) -> WebuiServer:
    """A server with the page, on its own port and data dir; skips when a prerequisite is missing.

    ``prepare(data_dir)`` runs before the server starts (e.g. to put files in its models folder).
    """
    root = webui_root()
    if root is None:
        pytest.skip("ZS2_WEBUI is not set")
    pytest.importorskip("playwright.sync_api", reason="browser tests: pip install playwright")
    if chromium_path() is None:
        pytest.skip("browser tests: no Chromium (set ZS2_CHROMIUM or install chromium)")
    data_dir = tmp_path_factory.mktemp("zs2-browser") / name
    data_dir.mkdir()
    _write_config(data_dir)
    (data_dir / "ui-config.json").write_text(json.dumps(SMALL_IMAGES), encoding="utf-8")
    install_extension(data_dir)
    if prepare is not None:
        prepare(data_dir)
    server = WebuiServer(name, root, webui_python(), data_dir, extra_args=extra_args, ui=True)
    server.launch()
    try:
        server.wait_ready(START_TIMEOUT + 120)  # the page takes longer to build than the API
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebuiServer]:
    server = start_ui_server(tmp_path_factory, "ui")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(ui_server: WebuiServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


@dataclass
class Page:
    """A loaded page of the ``ui`` server and the JavaScript errors it reported."""

    page: Any
    server: WebuiServer
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str, locator: Any = None) -> Path | None:
        """Save a screenshot as ``<ZS2_SCREENSHOTS>/<name>.png`` when that folder is given."""
        folder = os.environ.get("ZS2_SCREENSHOTS")
        if not folder:
            return None
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        (locator or self.page).screenshot(path=str(path))
        from PIL import Image

        with Image.open(path) as shot:  # a small PNG for docs/: 64 colours
            small = shot.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
        return path


def open_page(browser: Any, server: WebuiServer) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    opened = Page(page, server)
    origin = server.url

    def on_console(message: Any) -> None:
        url = (message.location or {}).get("url", "")
        if message.type == "error" and (not url or url.startswith(origin)):
            opened.errors.append(f"console: {message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
    page.goto(origin, wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector("#txt2img_prompt textarea", timeout=120_000)
    page.wait_for_selector("#script_txt2img_zs2_video_enabled", state="attached", timeout=60_000)
    return opened


@pytest.fixture
def ui(browser: Any, ui_server: WebuiServer) -> Iterator[Page]:
    """A fresh page of the ``ui`` server."""
    opened = open_page(browser, ui_server)
    yield opened
    opened.page.context.close()
