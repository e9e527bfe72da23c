"""Host-tier fixtures: real A1111 v1.10.1 servers, headless on CPU with the tiny checkpoint.

Enabled by ``ZS2_WEBUI=<webui root>`` (and ``ZS2_WEBUI_PYTHON=<its python>``, default: the python
running pytest). Without ``ZS2_WEBUI`` every test in this folder is skipped and no server starts.

Three servers start in parallel the first time a test needs one, each with its own ``--data-dir``
under pytest's temporary directory, on a free port of 127.0.0.1, and stop (process group) at the
end of the session:

* ``zs2``: the extension (``<data-dir>/extensions/sd-webui-zs2`` → this repository) and the test
  extension ``zs2-fault-injector`` (``fault_injector.py``);
* ``baseline``: the same webui without any extension;
* ``sdp``: the extension, with ``--opt-sdp-attention`` (the others use A1111's CPU default, InvokeAI).

Tests of SDXL start two more, ``sdxl`` (the extension) and ``sdxl-baseline`` (none), on a tiny SDXL
checkpoint that ``make_tiny_sdxl.py`` builds into the session's temporary directory first; they are
skipped, with the builder's reason, where it cannot be built (no sgm or open_clip in the webui).

With ``ZS2_CONTROLNET=<a checkout of Mikubill/sd-webui-controlnet>`` as well, tests of ControlNet
per frame get two more servers, started only when such a test runs: ``cn`` (the extension, the
fault injector, ControlNet) and ``cn_baseline`` (ControlNet alone). Each gets ControlNet as a
symlink, the project's tiny ControlNet ``tiny_cn`` (``make_tiny_controlnet.py``) and the test-only
loader shim (``tiny_controlnet_shim.py``) in its data dir. Without it those tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.webui.make_tiny_controlnet import install as install_controlnet
from tests.webui.webui_client import START_TIMEOUT, WebuiServer, install_extension

HERE = Path(__file__).resolve().parent
_MEASUREMENTS: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/webui is marked ``webui`` and skipped unless ZS2_WEBUI is set.

    Tests under tests/webui/forge need a Forge instead (``forge/conftest.py`` says which variables).
    """
    skip = pytest.mark.skip(reason="host tier: set ZS2_WEBUI to an A1111 root")
    forge = HERE / "forge"
    for item in items:
        parents = Path(str(item.fspath)).parents
        if HERE in parents:
            item.add_marker(pytest.mark.webui)
            if webui_root() is None and forge not in parents:
                item.add_marker(skip)


def webui_root() -> Path | None:
    value = os.environ.get("ZS2_WEBUI")
    return Path(value).resolve() if value else None


def webui_python() -> str:
    return os.environ.get("ZS2_WEBUI_PYTHON") or sys.executable


def _install_second_checkpoint(data_dir: Path, checkpoint: Path) -> None:
    """``tiny-b``: the same weights under another name, for refiner and model-switch tests."""
    models = data_dir / "models" / "Stable-diffusion"
    models.mkdir(parents=True, exist_ok=True)
    (models / "tiny-b.safetensors").symlink_to(checkpoint)
    (models / "tiny-b.yaml").symlink_to(checkpoint.with_suffix(".yaml"))


# A1111 restores a request's override_settings only for options present in its config file
# (processing.process_images reads opts.data), so an override of a default would outlive its
# request and leak into later tests. Writing the overridden options' defaults into config.json
# makes every override end with its request.
OVERRIDDEN_DEFAULTS = {
    "batch_cond_uncond": True,
    "randn_source": "GPU",
    "sd_checkpoints_limit": 1,
    "skip_early_cond": 0.0,
    "token_merging_ratio": 0.0,
    "hypertile_enable_unet": False,
    "hypertile_max_tile_unet": 256,
}


RANDOM_MODEL_SETTINGS = {"emphasis": "No norm"}
"""A1111's "Original" emphasis rescales each 75-token chunk's embedding by the ratio of its means
before and after weighting; a random text encoder's padding-only chunk has a mean of about 0, so
prompts over 75 tokens gave NaN. Without emphasis weights "No norm" computes the same values."""


def _write_config(data_dir: Path) -> None:
    config = {**OVERRIDDEN_DEFAULTS, **RANDOM_MODEL_SETTINGS}
    (data_dir / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")


def _install_tiny_lora(data_dir: Path, checkpoint: Path) -> None:
    """``tiny-lora``: a random rank-4 LoRA on every attention projection of the tiny UNet.

    Keys use A1111's own layer names (``diffusion_model_..._attn1_to_k``), which its Lora extension
    maps directly. Made with the webui's torch and safetensors; the same seed gives the same file.
    """
    import torch
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(7)
    tensors = {}
    for key, weight in load_file(str(checkpoint)).items():
        parts = key.split(".")
        if not (key.startswith("model.diffusion_model.") and parts[-1] == "weight" and ".attn" in key):
            continue
        if parts[-2] not in ("to_q", "to_k", "to_v") and parts[-3:-1] != ["to_out", "0"]:
            continue
        name = "_".join(parts[1:-1])
        out_features, in_features = weight.shape
        tensors[f"{name}.lora_down.weight"] = torch.randn(4, in_features, generator=generator) * 0.15
        tensors[f"{name}.lora_up.weight"] = torch.randn(out_features, 4, generator=generator) * 0.15
        tensors[f"{name}.alpha"] = torch.tensor(4.0)
    lora_dir = data_dir / "models" / "Lora"
    lora_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(lora_dir / "tiny-lora.safetensors"))


def _install_fault_injector(data_dir: Path) -> None:
    scripts = data_dir / "extensions" / "zs2-fault-injector" / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "fault_injector.py", scripts / "fault.py")


def controlnet_root() -> Path | None:
    value = os.environ.get("ZS2_CONTROLNET")
    return Path(value).resolve() if value else None


@pytest.fixture(scope="session")
def controlnet_servers(tmp_path_factory: pytest.TempPathFactory):
    """``cn`` (ZS² + ControlNet) and ``cn_baseline`` (ControlNet only), launched together."""
    root, controlnet = webui_root(), controlnet_root()
    if root is None or controlnet is None:
        pytest.skip("ControlNet tests: set ZS2_WEBUI and ZS2_CONTROLNET (an sd-webui-controlnet checkout)")
    if not (controlnet / "scripts" / "controlnet.py").is_file():
        pytest.fail(f"ZS2_CONTROLNET={controlnet} is not an sd-webui-controlnet checkout")
    checkpoint = root / "models" / "Stable-diffusion" / "tiny.safetensors"
    base = tmp_path_factory.mktemp("zs2-controlnet")
    servers: dict[str, WebuiServer] = {}
    for name, extension in (("cn", True), ("cn_baseline", False)):
        data_dir = base / name
        data_dir.mkdir()
        _write_config(data_dir)
        install_controlnet(data_dir, controlnet, checkpoint)
        if extension:
            install_extension(data_dir)
            _install_fault_injector(data_dir)
        servers[name] = WebuiServer(name, root, webui_python(), data_dir)
    yield from _serve(servers)


@pytest.fixture(scope="session")
def cn_server(controlnet_servers) -> WebuiServer:
    return _ready(controlnet_servers, "cn")


@pytest.fixture(scope="session")
def cn_baseline_server(controlnet_servers) -> WebuiServer:
    return _ready(controlnet_servers, "cn_baseline")


@pytest.fixture(scope="session")
def webui_servers(tmp_path_factory: pytest.TempPathFactory):
    """All three servers, launched together (not yet waited for: see the per-server fixtures)."""
    root = webui_root()
    if root is None:
        pytest.skip("ZS2_WEBUI is not set")
    checkpoint = root / "models" / "Stable-diffusion" / "tiny.safetensors"
    if not (root / "launch.py").is_file() or not checkpoint.is_file():
        pytest.fail(f"ZS2_WEBUI={root} is not an A1111 root with models/Stable-diffusion/tiny.safetensors")
    base = tmp_path_factory.mktemp("zs2-webui")
    python = webui_python()
    specs = {
        "zs2": ((), True, True),
        "baseline": ((), False, False),
        "sdp": (("--opt-sdp-attention",), True, False),
    }
    servers: dict[str, WebuiServer] = {}
    for name, (extra, extension, fault) in specs.items():
        data_dir = base / name
        data_dir.mkdir()
        _write_config(data_dir)
        _install_tiny_lora(data_dir, checkpoint)
        if extension:
            install_extension(data_dir)
        if fault:
            _install_fault_injector(data_dir)
            _install_second_checkpoint(data_dir, checkpoint)
        servers[name] = WebuiServer(name, root, python, data_dir, extra_args=extra)
    yield from _serve(servers)


SDXL = "tiny_sdxl"
SDXL_REFINER = "tiny_sdxl-b"
"""The tiny SDXL checkpoint, and the same weights under a second name for refiner tests."""


def _build_tiny_sdxl(root: Path, build: Path) -> Path:
    """Run the repository's SDXL builder into ``build``; skip the SDXL tests if it cannot run here."""
    command = [webui_python(), str(HERE / "make_tiny_sdxl.py"), "--out", str(build / "models")]
    command += ["--webui", str(root), "--extensions", str(build / "extensions")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"tiny SDXL checkpoint not built by make_tiny_sdxl.py: {reason}")
    stats = [line for line in done.stdout.splitlines() if line.startswith("redrew")]
    _MEASUREMENTS.append(f"tiny SDXL built: {stats[0] if stats else done.stdout.strip()[-200:]}")
    return build


def _install_sdxl(data_dir: Path, build: Path) -> Path:
    """Link the built SDXL files into a server's data dir; returns its checkpoint path."""
    models, built = data_dir / "models", build / "models"
    for folder in ("Stable-diffusion", "VAE-approx"):
        (models / folder).mkdir(parents=True, exist_ok=True)
    for name in (SDXL, SDXL_REFINER):
        for suffix in (".safetensors", ".yaml"):
            (models / "Stable-diffusion" / f"{name}{suffix}").symlink_to(
                built / "Stable-diffusion" / f"{SDXL}{suffix}"
            )
    (models / "VAE-approx" / "vaeapprox-sdxl.pt").symlink_to(built / "VAE-approx" / "vaeapprox-sdxl.pt")
    extensions = data_dir / "extensions"
    extensions.mkdir(parents=True, exist_ok=True)
    for extension in (build / "extensions").iterdir():
        (extensions / extension.name).symlink_to(extension, target_is_directory=True)
    return models / "Stable-diffusion" / f"{SDXL}.safetensors"


@pytest.fixture(scope="session")
def sdxl_servers(tmp_path_factory: pytest.TempPathFactory):
    """``sdxl`` (the extension) and ``sdxl-baseline`` (none) on the tiny SDXL checkpoint."""
    root = webui_root()
    if root is None:
        pytest.skip("ZS2_WEBUI is not set")
    base = tmp_path_factory.mktemp("zs2-sdxl")
    build = _build_tiny_sdxl(root, base / "build")
    servers: dict[str, WebuiServer] = {}
    for name, extension in (("sdxl", True), ("sdxl-baseline", False)):
        data_dir = base / name
        data_dir.mkdir()
        _write_config(data_dir)
        checkpoint = _install_sdxl(data_dir, build)
        if extension:
            install_extension(data_dir)
        servers[name] = WebuiServer(name, root, webui_python(), data_dir, ckpt=checkpoint)
    yield from _serve(servers)


@pytest.fixture(scope="session")
def sdxl_server(sdxl_servers) -> WebuiServer:
    return _ready(sdxl_servers, "sdxl")


@pytest.fixture(scope="session")
def sdxl_baseline_server(sdxl_servers) -> WebuiServer:
    return _ready(sdxl_servers, "sdxl-baseline")


def _serve(servers: dict[str, WebuiServer]):
    """Launch the servers together, hand them over, stop them all and record how long each took."""
    try:
        for server in servers.values():
            server.launch()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
        for server in servers.values():
            if server.ready_after is not None:
                _MEASUREMENTS.append(f"server {server.name}: ready after {server.ready_after:.1f} s")


def _ready(servers: dict[str, WebuiServer], name: str) -> WebuiServer:
    server = servers[name]
    problem = None
    try:
        server.wait_ready(START_TIMEOUT)
    except RuntimeError as error:
        problem = str(error)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return server


@pytest.fixture(scope="session")
def zs2_server(webui_servers) -> WebuiServer:
    return _ready(webui_servers, "zs2")


@pytest.fixture(scope="session")
def baseline_server(webui_servers) -> WebuiServer:
    return _ready(webui_servers, "baseline")


@pytest.fixture(scope="session")
def sdp_server(webui_servers) -> WebuiServer:
    return _ready(webui_servers, "sdp")


@pytest.fixture(scope="session")
def measure():
    """``measure("text")`` records a measured number; all are printed in the terminal summary."""
    return _MEASUREMENTS.append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _MEASUREMENTS:
        terminalreporter.section("ZS² host-tier measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
