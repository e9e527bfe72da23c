"""Starting headless A1111 servers and talking to their API, with the standard library only.

Used by the host-tier fixtures (``conftest.py``) and tests. Only stdlib, numpy and Pillow: the
project's CI venv has no requests or webuiapi, and this module must import there too (the tests are
skipped, but collection imports it).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
ZS2_TITLE = "ZS2 Video"
FAULT_TITLE = "ZS2 Fault Injector"
START_TIMEOUT = 180.0

LAUNCH_ARGS = (
    "--skip-prepare-environment",
    "--skip-install",
    "--skip-version-check",
    "--skip-python-version-check",
    "--skip-torch-cuda-test",
    "--no-download-sd-model",
    "--nowebui",
    "--api",
    "--use-cpu",
    "all",
    "--no-half",
    "--precision",
    "full",
)

FORGE_LAUNCH_ARGS = (
    *LAUNCH_ARGS[: LAUNCH_ARGS.index("--use-cpu")],
    "--always-cpu",
    "--all-in-fp32",
)
"""Forge main and Forge Classic take A1111's start flags but their own for CPU and fp32."""

# A small request: the tiny checkpoint makes 64x64 images (8x8 latents) in well under a second.
BASE_REQUEST: dict[str, Any] = {
    "prompt": "a red fox running through fresh snow, cinematic",
    "negative_prompt": "blurry, low quality",
    "seed": 1234,
    "subseed": 99,
    "subseed_strength": 0,
    "steps": 4,
    "width": 64,
    "height": 64,
    "cfg_scale": 7,
    "sampler_name": "Euler a",
    "batch_size": 1,
    "n_iter": 1,
    "save_images": False,
    "send_images": True,
}


def install_extension(data_dir: Path) -> None:
    """This repository as ``<data-dir>/extensions/sd-webui-zs2`` (a symlink, so edits apply)."""
    extensions = data_dir / "extensions"
    extensions.mkdir(parents=True, exist_ok=True)
    (extensions / "sd-webui-zs2").symlink_to(REPO_ROOT, target_is_directory=True)


def add_webui_arguments(parser: Any) -> None:
    """``--webui`` and ``--python`` for the benchmarks (defaults: $ZS2_WEBUI and $ZS2_WEBUI_PYTHON)."""
    parser.add_argument(
        "--webui", default=os.environ.get("ZS2_WEBUI"), help="A1111 root (default: $ZS2_WEBUI)"
    )
    parser.add_argument("--python", default=os.environ.get("ZS2_WEBUI_PYTHON", sys.executable))


def ddim_request(steps: int, size: int, seed: int = 1) -> dict[str, Any]:
    """The benchmarks' txt2img settings: DDIM, ``size`` × ``size`` pixels."""
    return {"steps": steps, "width": size, "height": size, "sampler_name": "DDIM", "seed": seed}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# HTTP ------------------------------------------------------------------------------------------


def http(method: str, url: str, payload: Any = None, timeout: float = 120.0) -> tuple[int, Any]:
    """``(status, parsed JSON body or text)`` of one request; HTTP errors are returned, not raised."""
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    text = body.decode("utf-8", errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


# images ----------------------------------------------------------------------------------------


def decode_png(data: str) -> np.ndarray:
    """A base64 PNG from the API as an RGB uint8 array."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return np.asarray(image.convert("RGB")).copy()


def png_text(data: str) -> dict[str, str]:
    """The text chunks (A1111's ``parameters`` infotext) of a base64 PNG."""
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}


def consecutive_change(frames: list[np.ndarray]) -> float:
    """Mean absolute difference of consecutive frames, in 0..255 pixel units."""
    assert len(frames) >= 2
    stack = np.stack(frames).astype(np.float64)
    return float(np.abs(np.diff(stack, axis=0)).mean())


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> int:
    """Largest per-pixel difference of two equally long image lists (0 means bitwise equal)."""
    assert len(a) == len(b), (len(a), len(b))
    return max(int(np.abs(x.astype(np.int16) - y.astype(np.int16)).max()) for x, y in zip(a, b, strict=True))


def mean_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    pairs = zip(a, b, strict=True)
    return float(np.mean([np.abs(x.astype(np.float64) - y.astype(np.float64)).mean() for x, y in pairs]))


# requests --------------------------------------------------------------------------------------


def txt2img_request(zs2: dict[str, Any] | list[Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A txt2img body: ``BASE_REQUEST`` with overrides and, if given, ZS² args (dict or positional)."""
    body = {**BASE_REQUEST, **overrides}
    if zs2 is not None:
        args = list(zs2) if isinstance(zs2, list) else [dict(zs2)]
        scripts = dict(body.get("alwayson_scripts") or {})
        scripts[ZS2_TITLE] = {"args": args}
        body["alwayson_scripts"] = scripts
    return body


def zs2_args(**values: Any) -> dict[str, Any]:
    """ZS² dict args: enabled, 8 frames at 8 fps and λ 0.01, μ 0.98, plus ``values``."""
    return {"enabled": True, "frames": 8, "fps": 8, "lambda": 0.01, "mu": 0.98, **values}


@dataclass
class Result:
    """A txt2img response: status, body, parsed info and the decoded images."""

    status: int
    body: Any
    info: dict[str, Any] = field(default_factory=dict)
    images: list[np.ndarray] = field(default_factory=list)

    @property
    def first(self) -> int:
        return int(self.info.get("index_of_first_image", 0))

    @property
    def frames(self) -> list[np.ndarray]:
        """The generated images (frames), without a grid."""
        return self.images[self.first :]

    @property
    def raw_images(self) -> list[str]:
        return list(self.body.get("images") or [])

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", "")) if isinstance(self.body, dict) else str(self.body)

    def describe(self) -> str:
        if isinstance(self.body, dict):
            shown = {k: v for k, v in self.body.items() if k not in ("images", "info")}
            return f"HTTP {self.status}: {json.dumps(shown)[:2000]}"
        return f"HTTP {self.status}: {str(self.body)[:2000]}"


# servers ---------------------------------------------------------------------------------------


@dataclass
class WebuiServer:
    """One A1111 or Forge started headless (API only, CPU, tiny checkpoint) in its own process group."""

    name: str
    webui: Path
    python: str
    data_dir: Path
    extra_args: tuple[str, ...] = ()
    ckpt: Path | None = None  # default: the webui's tiny.safetensors
    launch_args: tuple[str, ...] = LAUNCH_ARGS
    ready_line: str | None = "Model loaded"  # None: ready when the API answers (Forge loads lazily)
    ui: bool = False  # the full page too (browser tests); otherwise API only (--nowebui)
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    started_at: float = 0.0
    ready_after: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def checkpoint(self) -> Path:
        if self.ckpt is not None:
            return self.ckpt
        return self.webui / "models" / "Stable-diffusion" / "tiny.safetensors"

    def command(self) -> list[str]:
        return [
            self.python,
            "launch.py",
            *(arg for arg in self.launch_args if not (self.ui and arg == "--nowebui")),
            "--port",
            str(self.port),
            "--server-name",
            "127.0.0.1",
            "--ckpt",
            str(self.checkpoint),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]

    def launch(self) -> None:
        """Start the process (returns at once; see ``wait_ready``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.log_path = self.data_dir.parent / f"{self.name}.log"
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        for key in ("COMMANDLINE_ARGS", "WEBUI_RICH_EXCEPTIONS"):
            env.pop(key, None)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.webui,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() ends it and its children
            )
        self.started_at = time.monotonic()

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until the log says ``ready_line`` and the API answers; raise RuntimeError otherwise."""
        assert self.process is not None
        deadline = self.started_at + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"webui server {self.name!r} exited with code {code} during start; "
                    f"log {self.log_path}, last lines:\n{self.log_tail()}"
                )
            log = self.log_text()
            # with the page, gradio serves before A1111 adds its API: a request then would make A1111's
            # own start fail ("Cannot add middleware after an application has started")
            loaded = self.ready_line is None or self.ready_line in log
            if loaded and (not self.ui or "Startup time:" in log):
                try:
                    status, _ = http("GET", f"{self.url}/sdapi/v1/sd-models", timeout=5)
                except OSError:
                    status = 0
                if status == 200:
                    self.ready_after = time.monotonic() - self.started_at
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"webui server {self.name!r} not ready after {timeout:.0f} s; "
                    f"log {self.log_path}, last lines:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL after 20 s)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    # API ---------------------------------------------------------------------------------------

    def get(self, path: str, timeout: float = 30) -> tuple[int, Any]:
        return http("GET", f"{self.url}{path}", timeout=timeout)

    def post(self, path: str, payload: Any = None, timeout: float = 120) -> tuple[int, Any]:
        return http("POST", f"{self.url}{path}", payload if payload is not None else {}, timeout=timeout)

    def txt2img(self, body: dict[str, Any], timeout: float = 300) -> Result:
        status, data = self.post("/sdapi/v1/txt2img", body, timeout=timeout)
        result = Result(status, data)
        if status == 200 and isinstance(data, dict):
            result.info = json.loads(data["info"])
            result.images = [decode_png(image) for image in data.get("images") or []]
        return result

    def ok(self, body: dict[str, Any], timeout: float = 300) -> Result:
        """txt2img that must answer 200."""
        result = self.txt2img(body, timeout=timeout)
        assert result.status == 200, f"{self.name}: {result.describe()}\nlog tail:\n{self.log_tail(30)}"
        return result

    def hooks(self) -> dict[str, Any]:
        """The fault injector's hook report (only on a server with the fault injector)."""
        status, data = self.get("/zs2-fault/hooks")
        assert status == 200, (status, data)
        return data


def wrote_paths(log: str) -> list[Path]:
    """Paths from the extension's "ZS² Video: wrote <path> (N frames)" log lines."""
    return [Path(m) for m in re.findall(r"ZS² Video: wrote (.+?) \(\d+ frames\)", log)]


def zs2_infotext_value(infotext: str) -> str | None:
    """The value of the ``ZS2 Video`` key in an A1111 infotext (unquoted), or None."""
    match = re.search(r'ZS2 Video: ("(?:[^"\\]|\\.)*"|[^,\n]*)', infotext)
    if match is None:
        return None
    value = match.group(1)
    return json.loads(value) if value.startswith('"') else value
