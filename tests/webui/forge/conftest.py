"""Host-tier fixtures for Forge: Forge main and Forge Classic servers, headless on CPU, tiny checkpoint.

Enabled per Forge by an environment variable naming its root (and optionally its python, default:
the python running pytest):

* ``ZS2_FORGE`` (``ZS2_FORGE_PYTHON``): lllyasviel/stable-diffusion-webui-forge ``main``;
* ``ZS2_FORGE_CLASSIC`` (``ZS2_FORGE_CLASSIC_PYTHON``): Haoming02/sd-webui-forge-classic ``classic``.

A Forge not named is skipped. Each loads the tiny checkpoint ``ZS2_FORGE_CKPT`` (default
``<root>/models/Stable-diffusion/tiny.safetensors``, built by ``make_tiny_checkpoint.py``). For each
Forge two servers start (their own ``--data-dir``, free ports): ``zs2`` (the extension and the fault
injector) and ``baseline`` (no extension). Both get the test-only ``zs2-tiny-model`` extension
(``tiny_model.py``, linked), without which Forge cannot load a tiny checkpoint. The servers of one
Forge stop before the next Forge's start.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.webui.conftest import _MEASUREMENTS, _install_fault_injector, _ready, _serve, _write_config
from tests.webui.webui_client import FORGE_LAUNCH_ARGS, WebuiServer, install_extension

HERE = Path(__file__).resolve().parent
FORGES = {"main": "ZS2_FORGE", "classic": "ZS2_FORGE_CLASSIC"}
"""Each Forge's environment variable (its python: the same name with ``_PYTHON``)."""


def forge_root(variant: str) -> Path | None:
    value = os.environ.get(FORGES[variant])
    return Path(value).resolve() if value else None


def install_tiny_model(data_dir: Path) -> None:
    """``tiny_model.py`` linked into ``<data-dir>/extensions/zs2-tiny-model/scripts/`` (finds the builder)."""
    scripts = data_dir / "extensions" / "zs2-tiny-model" / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "zs2_tiny_model.py").symlink_to(HERE / "tiny_model.py")


@dataclass
class Forge:
    """One Forge's servers: ``zs2`` (the extension, the fault injector) and ``baseline`` (neither)."""

    variant: str
    zs2: WebuiServer
    baseline: WebuiServer


@pytest.fixture(scope="session", params=sorted(FORGES))
def forge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    variant = request.param
    root = forge_root(variant)
    if root is None:
        pytest.skip(f"Forge {variant}: set {FORGES[variant]} to its root")
    python = os.environ.get(f"{FORGES[variant]}_PYTHON") or sys.executable
    default = root / "models" / "Stable-diffusion" / "tiny.safetensors"
    checkpoint = Path(os.environ.get("ZS2_FORGE_CKPT") or default)
    if not (root / "launch.py").is_file() or not checkpoint.is_file():
        pytest.fail(f"{FORGES[variant]}={root}: no launch.py, or no tiny checkpoint at {checkpoint}")
    base = tmp_path_factory.mktemp(f"zs2-forge-{variant}")
    servers: dict[str, WebuiServer] = {}
    for name, extension in (("zs2", True), ("baseline", False)):
        data_dir = base / name
        data_dir.mkdir()
        _write_config(data_dir)
        install_tiny_model(data_dir)
        if extension:
            install_extension(data_dir)
            _install_fault_injector(data_dir)
        servers[name] = WebuiServer(
            f"forge-{variant}-{name}",
            root,
            python,
            data_dir,
            ckpt=checkpoint,
            launch_args=FORGE_LAUNCH_ARGS,
            ready_line=None,  # Forge loads the model on the first request
        )
    serving = _serve(servers)
    started = next(serving)
    try:
        _MEASUREMENTS.append(f"Forge {variant}: {root}")
        yield Forge(variant, _ready(started, "zs2"), _ready(started, "baseline"))
    finally:
        serving.close()  # stops both servers
