"""Prompt travel: what the conditioning costs, and spherical vs per-token linear interpolation.

1. **Cost** (a real A1111): starts A1111 headless on CPU with the tiny test checkpoint and this
   extension, makes a 256-frame video in chunks of 16 with a three-keyframe travel prompt and the
   same video with a plain prompt, and prints the time the travel feature spent making the frames'
   conditionings (its console line: A1111's encoding of the keyframes plus the interpolation, once
   per chunk) as a share of the request's wall time.
2. **Interpolation** (in process, the tiny checkpoint's own text encoder and UNet): for the frames
   between two keyframes, the per-token norm of the mixed conditioning relative to the keyframes'
   (a lerp of two directions is shorter than either), and how evenly the UNet's output moves from
   keyframe A to keyframe B (largest deviation of ``|eps_k - eps_A| / |eps_B - eps_A|`` from the
   straight line ``k / N``).
3. **Full size**: the interpolation alone for 256 frames at SD 1.5's and SDXL's widths.

Usage: ``python benchmarks/bench_prompt_travel.py --webui /path/to/stable-diffusion-webui
[--python /path/to/webui/venv/bin/python] [--frames 256] [--chunk 16]``; run it with the webui's
python (part 2 loads the checkpoint with its ldm).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.webui.webui_client import REPO_ROOT, WebuiServer, install_extension, txt2img_request, zs2_args

A = "a red fox sitting in fresh snow, morning light"
B = "a blue bird flying over a stormy sea at night"
C = "a small wooden boat on a calm lake at dawn"


def travel_prompt(frames: int) -> str:
    return f"masterpiece, best quality\n0: {A}\n{frames // 2}: {B}\n{frames - 1}: {C}\n, detailed"


def cost(webui: Path, python: str, frames: int, chunk: int, steps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="zs2-bench-travel-") as folder:
        data_dir = Path(folder) / "data"
        install_extension(data_dir)
        server = WebuiServer("bench", webui, python, data_dir)
        server.launch()
        try:
            server.wait_ready()
            args = zs2_args(frames=frames, chunk=chunk, formats=["gif"])
            print("| prompt | frames | chunk | wall s | conditioning ms | share |")
            print("|---|---|---|---|---|---|")
            for name, prompt in (("plain", A), ("travel, 3 keyframes", travel_prompt(frames))):
                before = len(server.log_text())
                started = time.perf_counter()
                server.ok(
                    txt2img_request(args, prompt=prompt, sampler_name="DDIM", steps=steps), timeout=3600
                )
                wall = time.perf_counter() - started
                found = re.findall(
                    r"prompt travel: (\d+) frame conditionings in ([\d.]+) ms", server.log_text()[before:]
                )
                ms = float(found[-1][1]) if found else 0.0
                print(f"| {name} | {frames} | {chunk} | {wall:.1f} | {ms:.1f} | {ms / 1000 / wall:.2%} |")
        finally:
            server.stop()


def interpolation(webui: Path, frames: int = 16) -> None:
    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, str(REPO_ROOT / "tests" / "webui"))
    from make_tiny_checkpoint import instantiate, use_ldm_from

    from zs2_lib.prompt_travel import lerp, slerp

    use_ldm_from(webui)
    checkpoint = webui / "models" / "Stable-diffusion" / "tiny.safetensors"
    torch.set_num_threads(1)
    with torch.no_grad():
        model = instantiate(checkpoint.with_suffix(".yaml"))
        model.load_state_dict(load_file(str(checkpoint)), strict=False)
        a, b = model.get_learned_conditioning([A, B])
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, 4, 8, 8, generator=generator)
        t = torch.tensor([500])
        eps_a, eps_b = (model.apply_model(x, t, cond[None]) for cond in (a, b))
        span = float((eps_b - eps_a).abs().mean())
        print(
            "\n| interpolation | min token norm / lerp of norms | mean | max deviation of eps path from k/N |"
        )
        print("|---|---|---|---|")
        for name, mix in (("slerp (per token)", slerp), ("lerp (per token)", lerp)):
            ratios, deviations = [], []
            for k in range(frames):
                w = k / (frames - 1)
                cond = mix(a, b, w)
                expected = (1 - w) * a.norm(dim=-1) + w * b.norm(dim=-1)
                ratios.append(cond.norm(dim=-1) / expected)
                eps = model.apply_model(x, t, cond[None])
                deviations.append(abs(float((eps - eps_a).abs().mean()) / span - w))
            ratio = torch.stack(ratios)
            print(
                f"| {name} | {float(ratio.min()):.3f} | {float(ratio.mean()):.3f} | {max(deviations):.3f} |"
            )
        cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1)
        print(
            f"\nper-token cosine of A and B: min {float(cosine.min()):.3f}, mean {float(cosine.mean()):.3f}"
        )


def full_size(frames: int = 256) -> None:
    """The interpolation alone at SD 1.5's and SDXL's token widths (random tensors, CPU)."""
    import torch

    from zs2_lib.prompt_travel import interpolate

    torch.set_num_threads(1)
    print(f"\n| conditioning | per frame | {frames} frames |")
    print("|---|---|---|")
    for name, width, vector in (("SD 1.5, 77 × 768", 768, None), ("SDXL, 77 × 2048 + 2816", 2048, 2816)):
        a, b = (torch.randn(77, width) for _ in range(2))
        if vector is not None:
            a, b = (
                {"crossattn": a, "vector": torch.randn(vector)},
                {"crossattn": b, "vector": torch.randn(vector)},
            )
        started = time.perf_counter()
        for k in range(frames):
            interpolate(a, b, (k + 0.5) / frames)
        seconds = time.perf_counter() - started
        print(f"| {name} | {seconds / frames * 1000:.2f} ms | {seconds * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--webui", default=os.environ.get("ZS2_WEBUI"), help="A1111 root (default: $ZS2_WEBUI)"
    )
    parser.add_argument("--python", default=os.environ.get("ZS2_WEBUI_PYTHON", sys.executable))
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--skip-cost", action="store_true", help="only the in-process interpolation part")
    args = parser.parse_args()
    if not args.webui:
        parser.error("--webui (or ZS2_WEBUI) is required")
    webui = Path(args.webui).resolve()
    if not args.skip_cost:
        cost(webui, args.python, args.frames, args.chunk, args.steps)
    interpolation(webui)
    full_size(args.frames)


if __name__ == "__main__":
    main()
