"""Video to video in a real A1111: time per frame and peak memory vs length, ZS² on vs plain img2img.

Starts A1111 headless on CPU with the tiny test checkpoint and this extension, writes a source
video as a folder of PNG frames, then for 16, 64 and 256 frames: a ZS² v2v run in chunks of 16
(the ``video`` arg, a server path, written as an MP4) and the same frames through plain img2img
(ZS² off) as batches of 16 init images, one request per batch, twice (``plain`` and ``plain
again``), the three in a rotating order for ``--rounds`` rounds. Prints the median wall time and
server CPU time per frame (its own and its finished children's, e.g. ffmpeg), the medians of the
per-round ratios to ``plain``, and the server's peak RSS (VmHWM, reset before each run).
``plain again`` / ``plain`` is the same work twice: how far the machine alone moves a ratio.
Targets: ZS² ≤ 1.05× plain img2img per frame, and time per frame and peak memory flat in the
length. The default size and steps are ``bench_overhead.py``'s for the tiny checkpoint; at 64×64
and 4 steps a frame costs so little that the MP4's fixed cost (an ffmpeg start) shows.

Usage: ``python benchmarks/bench_v2v.py --webui /path/to/stable-diffusion-webui
[--python /path/to/webui/venv/bin/python] [--ckpt other.safetensors] [--frames 16 64 256] [--chunk 16]
[--steps 8] [--size 128] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_webui import cpu_seconds, median_ratio, read_kib, reset_peak
from tests.webui.test_webui_img2img import img2img_body, ok, png_b64, source_frames
from tests.webui.webui_client import WebuiServer, add_webui_arguments, install_extension


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_webui_arguments(parser)
    parser.add_argument(
        "--ckpt", help="checkpoint (default: the webui's models/Stable-diffusion/tiny.safetensors)"
    )
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="output width and height (the source is 64²)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.webui:
        parser.error("give --webui or set ZS2_WEBUI")

    root = Path(tempfile.mkdtemp(prefix="zs2-bench-v2v-"))
    data_dir = root / "data"
    install_extension(data_dir)
    frames = source_frames(max(args.frames))
    folder = root / "source"
    folder.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:05d}.png")
    encoded = [png_b64(frame) for frame in frames]
    # "No norm": as in bench_overhead.py, for the random text encoder of the SD 1.5-width checkpoint.
    request = {
        "steps": args.steps,
        "sampler_name": "DDIM",
        "seed": 1,
        "override_settings": {"emphasis": "No norm"},
    }
    request.update(width=args.size, height=args.size)
    extra = ("--ckpt", args.ckpt) if args.ckpt else ()
    server = WebuiServer("bench-v2v", Path(args.webui), args.python, data_dir, extra_args=extra)
    server.launch()
    rows = []
    try:
        server.wait_ready()
        pid = server.process.pid

        def zs2(count: int) -> None:
            zs2_args = {"enabled": True, "video": str(folder), "video_frames": count, "chunk": args.chunk}
            result = ok(server, img2img_body(None, {**zs2_args, "formats": ["mp4"]}, **request))
            assert len(result.frames) >= count

        def plain(count: int) -> None:
            for first in range(0, count, args.chunk):
                body = img2img_body(None, batch_size=args.chunk, **request)
                body["init_images"] = encoded[first : first + args.chunk]
                ok(server, body)

        runs = {"zs2": zs2, "plain": plain, "plain again": plain}
        zs2(args.chunk)  # warm up
        plain(args.chunk)
        for count in args.frames:
            measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
            for round_number in range(args.rounds):
                names = list(runs)[round_number % 3 :] + list(runs)[: round_number % 3]
                for name in names:
                    reset_peak(pid)
                    started, used = time.perf_counter(), cpu_seconds(pid)
                    runs[name](count)
                    wall, work = time.perf_counter() - started, cpu_seconds(pid) - used
                    measured[name].append((wall / count, work / count, read_kib(pid, "VmHWM") / 2**20))
            rows.append((count, measured))
    finally:
        server.stop()

    checkpoint = Path(args.ckpt).name if args.ckpt else "tiny checkpoint"
    print(f"ZS² video to video in A1111 vs plain img2img ({checkpoint}, CPU, OMP_NUM_THREADS as set)")
    strength = img2img_body(None)["denoising_strength"]
    settings = f"{args.size}x{args.size} px, {args.steps} DDIM steps, strength {strength}"
    print(f"{settings}, chunks of {args.chunk}, {args.rounds} rounds")
    print()
    columns = ["frames", "ZS² wall s/frame", "plain wall s/frame", "wall ratio", "ZS² CPU s/frame"]
    columns += ["plain CPU s/frame", "CPU ratio", "plain again / plain CPU", "ZS² peak RSS GiB"]
    columns += ["plain peak RSS GiB"]
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    for count, measured in rows:
        zs2_wall, zs2_cpu, plain_wall, plain_cpu = (
            statistics.median(entry[column] for entry in measured[name])
            for name in ("zs2", "plain")
            for column in (0, 1)
        )
        wall_ratio, cpu_ratio, control = (
            median_ratio(
                [entry[column] for entry in measured[name]], [entry[column] for entry in measured["plain"]]
            )
            for name, column in (("zs2", 0), ("zs2", 1), ("plain again", 1))
        )
        zs2_rss, plain_rss = (max(entry[2] for entry in measured[name]) for name in ("zs2", "plain"))
        values = [f"{zs2_wall:.3f}", f"{plain_wall:.3f}", f"{wall_ratio:.2f}", f"{zs2_cpu:.3f}"]
        values += [f"{plain_cpu:.3f}", f"{cpu_ratio:.2f}", f"{control:.2f}", f"{zs2_rss:.3f}"]
        values += [f"{plain_rss:.3f}"]
        print(f"| {count} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
