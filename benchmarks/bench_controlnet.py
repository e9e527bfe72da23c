"""ControlNet per frame in a real A1111: cost per frame vs ControlNet's own batch, and memory vs length.

Starts A1111 headless on CPU with the tiny test checkpoint, sd-webui-controlnet, the project's tiny
ControlNet (``tests/webui/make_tiny_controlnet.py``) and this extension, then prints two tables:

1. Time per frame for the same 16 control frames: no ControlNet, ControlNet's own per-frame batch
   (``animatediff_batch`` with a folder, ZS² off: the path AnimateDiff uses), and ZS² with
   ``control_video`` (same folder); the ratio of ZS² to ControlNet's batch.
2. Videos of 16, 64 and 256 frames in chunks of 16, each with a control video of its length: time
   per frame and the server's peak RSS during the request (VmHWM, reset before each run). Target:
   flat in the length, since only one chunk's hints exist at a time.

Usage: ``python benchmarks/bench_controlnet.py --webui WEBUI --controlnet SD-WEBUI-CONTROLNET
[--python WEBUI/venv/bin/python] [--frames 16 64 256] [--chunk 16]``; run it with the webui's python.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_webui import read_kib, reset_peak
from tests.webui.make_tiny_controlnet import install
from tests.webui.webui_client import (
    WebuiServer,
    ddim_request,
    install_extension,
    txt2img_request,
    zs2_args,
)


def write_control_folder(folder: Path, count: int, size: int) -> Path:
    """``count`` two-colour frames of a bar moving right, as PNGs named in natural order."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size]
    for i in range(count):
        on = np.abs(x - (3 * i) % size) < size // 10
        on ^= ((y // 6 + i // 4) % 2 == 0) & (y > size // 2)
        Image.fromarray(np.repeat((on * 255).astype(np.uint8)[..., None], 3, axis=2)).save(
            folder / f"{i}.png"
        )
    return folder


def unit(**values: object) -> dict:
    return {"enabled": True, "module": "none", "model": "tiny_cn", "save_detected_map": False, **values}


def timed(server: WebuiServer, body: dict, frames: int) -> tuple[float, float]:
    """(seconds per frame, peak RSS GiB) of one request."""
    pid = server.process.pid
    reset_peak(pid)
    started = time.perf_counter()
    result = server.ok(body, timeout=3600)
    elapsed = time.perf_counter() - started
    assert len(result.frames) >= frames, len(result.frames)
    return elapsed / frames, read_kib(pid, "VmHWM") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webui", default=os.environ.get("ZS2_WEBUI"))
    parser.add_argument("--controlnet", default=os.environ.get("ZS2_CONTROLNET"))
    parser.add_argument("--python", default=os.environ.get("ZS2_WEBUI_PYTHON", sys.executable))
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    if not args.webui or not args.controlnet:
        parser.error("give --webui and --controlnet (or set ZS2_WEBUI and ZS2_CONTROLNET)")

    base = Path(tempfile.mkdtemp(prefix="zs2-bench-cn-"))
    data_dir = base / "data"
    webui = Path(args.webui)
    install(data_dir, Path(args.controlnet), webui / "models" / "Stable-diffusion" / "tiny.safetensors")
    install_extension(data_dir)
    folders = {
        n: write_control_folder(base / f"control{n}", n, args.size) for n in {args.chunk, *args.frames}
    }
    request = ddim_request(args.steps, args.size)
    chunk, first = args.chunk, str(folders[args.chunk])
    server = WebuiServer("bench-cn", webui, args.python, data_dir)
    server.launch()
    try:
        server.wait_ready()
        cn_batch = unit(animatediff_batch=True, batch_images=first)
        same = {
            "no ControlNet": txt2img_request(None, batch_size=chunk, **request),
            "ControlNet batch (ZS² off)": txt2img_request(
                None, batch_size=chunk, alwayson_scripts={"controlnet": {"args": [cn_batch]}}, **request
            ),
            "ZS² + control_video": txt2img_request(
                zs2_args(frames=chunk, chunk=chunk, control_video=first, formats=["mp4"]),
                alwayson_scripts={"controlnet": {"args": [unit()]}},
                **request,
            ),
        }
        for body in same.values():
            server.ok(body)  # warm up: model loads and caches
        costs = {label: min(timed(server, body, chunk)[0] for _ in range(3)) for label, body in same.items()}
        lengths = []
        for frames in args.frames:
            zs2 = zs2_args(frames=frames, chunk=chunk, control_video=str(folders[frames]), formats=["mp4"])
            body = txt2img_request(zs2, alwayson_scripts={"controlnet": {"args": [unit()]}}, **request)
            lengths.append((frames, *timed(server, body, frames)))
    finally:
        server.stop()

    print("ControlNet per frame in A1111 (tiny checkpoint and tiny ControlNet, CPU, OMP_NUM_THREADS=1)")
    print(f"{args.size}x{args.size} px, {args.steps} DDIM steps, one unit (module none); best of 3")
    print()
    print(f"{chunk} frames                       s/frame  vs ControlNet batch")
    print("-----------------------------  -------  -------------------")
    reference = costs["ControlNet batch (ZS² off)"]
    for label, cost in costs.items():
        print(f"{label:<29}  {cost:>7.4f}  {cost / reference:>19.2f}")
    print()
    print(f"frames  chunks  s/frame  vs first  peak RSS GiB  vs first   (chunks of {chunk})")
    print("------  ------  -------  --------  ------------  --------")
    _, base_time, base_rss = lengths[0]
    for frames, per_frame, rss in lengths:
        print(
            f"{frames:>6}  {-(-frames // chunk):>6}  {per_frame:>7.4f}  {per_frame / base_time - 1:>+8.1%}  "
            f"{rss:>12.3f}  {rss / base_rss - 1:>+8.1%}"
        )


if __name__ == "__main__":
    main()
