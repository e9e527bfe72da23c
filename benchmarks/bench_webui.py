"""Long videos in a real A1111: time per frame, peak memory and carried state vs video length.

Starts A1111 headless on CPU with the tiny test checkpoint and this extension (see
``tests/webui/webui_client.py``), then makes videos of 16, 64 and 256 frames in chunks of 16 and
prints, per length: wall time per frame, the server's peak RSS during that request (VmHWM, reset
before each run through ``/proc/<pid>/clear_refs``), VRAM where CUDA is used, and the state the
extension carried between chunks (from its console line). Target: time per frame and peak memory
flat in the video length (within 10 %), since only one chunk is ever in memory.

Usage: ``python benchmarks/bench_webui.py --webui /path/to/stable-diffusion-webui
[--python /path/to/webui/venv/bin/python] [--frames 16 64 256] [--chunk 16]``; run it with the
webui's python or any python with numpy and Pillow.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.webui.webui_client import (
    WebuiServer,
    add_webui_arguments,
    ddim_request,
    install_extension,
    txt2img_request,
    zs2_args,
)


def read_kib(pid: int, field: str) -> int:
    """A ``VmHWM``/``VmRSS``-style field of /proc/<pid>/status, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid`` and its waited-for children so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def median_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """The median of the per-round ratios ``ours[i] / theirs[i]`` (which cancels slow phases of a
    shared machine)."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def reset_peak(pid: int) -> None:
    """Restart the peak-RSS count of a process (Linux: write 5 to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def vram_peak_gib(server: WebuiServer) -> float | None:
    """Peak allocated CUDA memory of the server so far (A1111's /sdapi/v1/memory), or None on CPU."""
    _, memory = server.get("/sdapi/v1/memory")
    peak = memory.get("cuda", {}).get("allocated", {}).get("peak") if isinstance(memory, dict) else None
    return None if peak is None else peak / 2**30


def carried_mib(log: str) -> float | None:
    """The last "state carried between chunks" the extension logged, in MiB."""
    values = re.findall(r"state carried between chunks: ([\d.]+) MiB", log)
    return float(values[-1]) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_webui_arguments(parser)
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64, help="image width and height in pixels")
    args = parser.parse_args()
    if not args.webui:
        parser.error("give --webui or set ZS2_WEBUI")

    data_dir = Path(tempfile.mkdtemp(prefix="zs2-bench-")) / "data"
    install_extension(data_dir)
    server = WebuiServer("bench", Path(args.webui), args.python, data_dir)
    server.launch()
    try:
        server.wait_ready()
        pid = server.process.pid
        request = ddim_request(args.steps, args.size)
        server.ok(
            txt2img_request(zs2_args(frames=args.chunk, chunk=args.chunk, formats=["mp4"]), **request)
        )  # warm up
        rows = []
        for frames in args.frames:
            reset_peak(pid)
            started = time.perf_counter()
            result = server.ok(
                txt2img_request(zs2_args(frames=frames, chunk=args.chunk, formats=["mp4"]), **request),
                timeout=3600,
            )
            elapsed = time.perf_counter() - started
            assert len(result.frames) >= frames
            rows.append(
                (
                    frames,
                    elapsed,
                    elapsed / frames,
                    read_kib(pid, "VmHWM") / 2**20,
                    vram_peak_gib(server),
                    carried_mib(server.log_text()),
                )
            )
    finally:
        server.stop()

    print("ZS² Video in A1111: long videos in chunks (tiny checkpoint, OMP_NUM_THREADS=1)")
    print(
        f"{args.size}x{args.size} px, {args.steps} DDIM steps, chunks of {args.chunk}, MP4 output; "
        "'vs first' compares with the shortest video; VRAM is the server's CUDA peak so far "
        "(runs go in increasing length), n/a on CPU"
    )
    print()
    print("frames  chunks  wall s  s/frame  vs first  peak RSS GiB  vs first  VRAM GiB  carried MiB")
    print("------  ------  ------  -------  --------  ------------  --------  --------  -----------")
    base_time, base_rss = rows[0][2], rows[0][3]
    for frames, elapsed, per_frame, rss, vram, carried in rows:
        chunks = -(-frames // args.chunk)
        vram_text = "n/a" if vram is None else f"{vram:.3f}"
        carried_text = "-" if carried is None else f"{carried:.2f}"
        print(
            f"{frames:>6}  {chunks:>6}  {elapsed:>6.1f}  {per_frame:>7.3f}  "
            f"{per_frame / base_time - 1:>+8.1%}  {rss:>12.3f}  {rss / base_rss - 1:>+8.1%}  "
            f"{vram_text:>8}  {carried_text:>11}"
        )


if __name__ == "__main__":
    main()
