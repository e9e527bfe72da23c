"""Video to video in a real A1111: time per frame and peak memory vs length, ZS² on vs plain img2img.

Starts A1111 headless on CPU with the tiny test checkpoint and this extension, writes a source
video as a folder of PNG frames, then for 16, 64 and 256 frames: a ZS² v2v run in chunks of 16
(the ``video`` arg, a server path) and the same frames through plain img2img (ZS² off) as batches
of 16 init images, one request per batch. Prints wall time per frame and the server's peak RSS
during each (VmHWM, reset before each run). Targets: ZS² ≤ 1.05× plain img2img per frame, and
time per frame and peak memory flat in the length.

Usage: ``python benchmarks/bench_v2v.py --webui /path/to/stable-diffusion-webui
[--python /path/to/webui/venv/bin/python] [--frames 16 64 256] [--chunk 16]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_webui import read_kib, reset_peak
from tests.webui.test_webui_img2img import img2img_body, ok, png_b64, source_frames
from tests.webui.webui_client import WebuiServer, add_webui_arguments, install_extension


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_webui_arguments(parser)
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
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
    request = {"steps": args.steps, "sampler_name": "DDIM", "seed": 1}
    server = WebuiServer("bench-v2v", Path(args.webui), args.python, data_dir)
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

        zs2(args.chunk)  # warm up
        plain(args.chunk)
        for count in args.frames:
            row = [count]
            for make in (zs2, plain):
                reset_peak(pid)
                started = time.perf_counter()
                make(count)
                row += [(time.perf_counter() - started) / count, read_kib(pid, "VmHWM") / 2**20]
            rows.append(row)
    finally:
        server.stop()

    print("ZS² video to video in A1111 vs plain img2img (tiny checkpoint, CPU, OMP_NUM_THREADS as set)")
    strength = img2img_body(None)["denoising_strength"]
    print(f"64x64 px, {args.steps} DDIM steps, strength {strength}, chunks of {args.chunk}")
    print()
    print("frames  ZS² s/frame  plain s/frame  ratio  ZS² peak RSS GiB  plain peak RSS GiB")
    print("------  -----------  -------------  -----  ----------------  ------------------")
    for count, zs2_time, zs2_rss, plain_time, plain_rss in rows:
        print(
            f"{count:>6}  {zs2_time:>11.3f}  {plain_time:>13.3f}  {zs2_time / plain_time:>5.2f}  "
            f"{zs2_rss:>16.3f}  {plain_rss:>18.3f}"
        )


if __name__ == "__main__":
    main()
