"""ZS² overhead in a real A1111: a video's wall time against the same frames as a plain batch.

Starts A1111 headless with this extension (``tests/webui/webui_client.py``) and times, side by side
in one server with the requests interleaved round by round, for F frames at one size:

* ``plain``: ZS² off, a batch of F images (the baseline);
* ``noise only``: ZS² with μ = 0 (no attention hooks), dependency noise, GIF output;
* ``momentum only``: ZS² with independent noise, μ = 0.98, GIF output;
* ``encoding only``: ZS² with independent noise and μ = 0, i.e. the plain batch plus the video files;
* ``all, <format>``: the defaults (dependency noise, μ = 0.98) writing one format each.

The table gives each variant's median over the rounds and its ratio to ``plain`` (the median of the
per-round ratios, which cancels slow phases of a shared machine), for wall time and for the server's
CPU time (its own and its finished children's, e.g. ffmpeg: ``/proc/<pid>/stat``, Linux), and the
server's peak RSS during each variant's requests. With one
torch thread the CPU time is the work done, which other jobs on a shared machine barely change,
while they stretch the wall time. With ``--profile`` it also
samples the server with py-spy during extra ``all, gif`` requests and lists where ZS² spends its
own time (samples whose innermost ``zs2_lib`` frame calls no webui code below it), as a share of
all samples.

Usage: ``python benchmarks/bench_overhead.py --webui /path/to/stable-diffusion-webui
[--python /path/to/webui/venv/bin/python] [--ckpt other.safetensors] [--frames 16] [--size 128]
[--steps 8] [--rounds 5] [--variants "all, gif" ...] [--profile]``. Targets: all ≤ 1.05× plain
for the tiny checkpoint on CPU, ≤ 1.02× for the SD 1.5 architecture.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_webui import cpu_seconds, median_ratio, read_kib, reset_peak
from tests.webui.webui_client import (
    WebuiServer,
    add_webui_arguments,
    ddim_request,
    install_extension,
    txt2img_request,
    zs2_args,
)

FORMATS = ("gif", "mp4", "webm", "webp", "png")
HOST_CODE = ("/modules/", "/repositories/", "/k_diffusion/", "/ldm/", "/sgm/", "/extensions-builtin/")
"""Paths of the webui's own code: time below a ZS² frame spent there is the host's, not ZS²'s."""


def variants(frames: int) -> dict[str, dict | None]:
    """The ZS² args of each variant (None: ZS² off, a plain batch of ``frames`` images)."""
    video = {"frames": frames, "chunk": frames}
    table: dict[str, dict | None] = {
        "plain": None,
        "noise only": zs2_args(**video, mu=0, formats=["gif"]),
        "momentum only": zs2_args(**video, noise_model="independent", formats=["gif"]),
        "encoding only": zs2_args(**video, mu=0, noise_model="independent", formats=["gif"]),
    }
    for fmt in FORMATS:
        table[f"all, {fmt}"] = zs2_args(**video, mu=0.98, formats=[fmt])
    return table


def profile(server: WebuiServer, body: dict, seconds_per_request: float, requests: int) -> Counter:
    """py-spy samples of the server while it serves ``requests`` times ``body``: function → count."""
    out = Path(tempfile.mkdtemp(prefix="zs2-pyspy-")) / "profile.txt"
    duration = int(seconds_per_request * requests) + 2
    spy = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(server.process.pid),
            "--duration",
            str(duration),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    for _ in range(requests):
        server.ok(body)
    spy.wait()
    counts: Counter = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        frames = stack.split(";")
        own = max((i for i, f in enumerate(frames) if "zs2_lib" in f), default=None)  # innermost ZS² frame
        if own is None or any(marker in f for f in frames[own + 1 :] for marker in HOST_CODE):
            continue  # not ZS²'s own time: a wrapper around the host's sampling, say
        frame = frames[own]
        counts[frame.split(" (")[0] + " " + frame.split("/zs2_lib/")[-1].rstrip(")")] += int(count)
    counts["<all samples>"] = total
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_webui_arguments(parser)
    parser.add_argument(
        "--ckpt", help="checkpoint (default: the webui's models/Stable-diffusion/tiny.safetensors)"
    )
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="image width and height in pixels")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", nargs="+", help="only these variants (plain is always run)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy (needs py-spy)")
    args = parser.parse_args()
    if not args.webui:
        parser.error("give --webui or set ZS2_WEBUI")
    if args.profile and shutil.which("py-spy") is None:
        parser.error("--profile needs py-spy on PATH (pip install py-spy)")

    data_dir = Path(tempfile.mkdtemp(prefix="zs2-overhead-")) / "data"
    install_extension(data_dir)
    extra = ("--ckpt", args.ckpt) if args.ckpt else ()
    server = WebuiServer("overhead", Path(args.webui), args.python, data_dir, extra_args=extra)
    server.launch()
    # "No norm": A1111's default emphasis divides by an embedding mean, which random text encoders
    # (the SD 1.5-width test checkpoint) bring to about 0; without weights both give the same values.
    request = {**ddim_request(args.steps, args.size), "override_settings": {"emphasis": "No norm"}}
    table = variants(args.frames)
    if args.variants:
        unknown = set(args.variants) - set(table)
        if unknown:
            parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(table)}")
        table = {name: zs2 for name, zs2 in table.items() if name == "plain" or name in args.variants}
    times: dict[str, list[float]] = {name: [] for name in table}
    cpu: dict[str, list[float]] = {name: [] for name in table}
    peak: dict[str, float] = dict.fromkeys(table, 0.0)
    try:
        server.wait_ready()
        bodies = {
            name: txt2img_request(zs2, **request, **({"batch_size": args.frames} if zs2 is None else {}))
            for name, zs2 in table.items()
        }
        for body in bodies.values():  # warm up every path once
            server.ok(body)
        for round_number in range(args.rounds):
            order = list(bodies) if round_number % 2 == 0 else list(reversed(bodies))
            for name in order:
                pid = server.process.pid
                reset_peak(pid)
                started, used = time.perf_counter(), cpu_seconds(pid)
                result = server.ok(bodies[name])
                times[name].append(time.perf_counter() - started)
                cpu[name].append(cpu_seconds(pid) - used)
                peak[name] = max(peak[name], read_kib(pid, "VmHWM") / 2**20)
                assert len(result.frames) == args.frames, (name, len(result.frames))
        counts = (
            profile(server, bodies["all, gif"], statistics.median(times["all, gif"]), 4)
            if args.profile
            else None
        )
    finally:
        server.stop()

    checkpoint = args.ckpt or "tiny"
    print(f"ZS² overhead in A1111 v1.10.1, checkpoint {Path(checkpoint).name}, OMP_NUM_THREADS=1")
    print(
        f"{args.frames} frames, {args.size}x{args.size} px, {args.steps} DDIM steps, one chunk; "
        f"{args.rounds} interleaved rounds; ratio = median of per-round ratios to plain"
    )
    print()
    print("| variant | wall s | wall ratio | CPU s | CPU ratio | peak RSS GiB |")
    print("|---|---|---|---|---|---|")
    for name in table:
        wall, work = _median_and_ratio(times, name), _median_and_ratio(cpu, name)
        values = [*wall, *work, peak[name]]
        print(f"| {name} | " + " | ".join(f"{value:.3f}" for value in values) + " |")
    if counts:
        total = counts.pop("<all samples>")
        print()
        print(f"py-spy: where ZS² spends its own time during 'all, gif' ({total} samples)")
        print("share   function")
        print("------  --------")
        for function, count in counts.most_common(12):
            print(f"{count / total:>6.2%}  {function}")


def _median_and_ratio(measured: dict[str, list[float]], name: str) -> tuple[float, float]:
    """A variant's median and the median of its per-round ratios to ``plain``."""
    values = measured[name]
    return statistics.median(values), median_ratio(values, measured["plain"])


if __name__ == "__main__":
    main()
