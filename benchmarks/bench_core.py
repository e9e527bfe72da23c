"""CPU benchmark of the ZS² core: temporal momentum hooks and the dependency noise search.

What it measures, for a tiny ldm UNet (``tests.helpers.TINY``) and an SD 1.5-shaped one
(``tests.helpers.SD15``: the real SD 1.5 UNet config, 860 M parameters, random weights) at each
frame count F (default 8, 16 and 64), on a latent of 4×L×L (default L = 16, i.e. 128 px) with a
CFG batch of 2F rows (cond frames, then uncond frames; context ``[2F, 77, context_dim]``), in
float32 under ``torch.no_grad`` on the CPU:

* **plain**: one UNet forward without hooks (median of the timed runs);
* **hooked**: one UNet forward under :func:`zs2_lib.attention.momentum_attention` (μ = 0.98, a
  :class:`~zs2_lib.attention.FrameLayout` of the two streams) and its overhead over plain, in %;
* **mix**: the pure cost of the mixing, the sum over all attn1 layers of the time
  :meth:`TemporalMomentum.mix` takes during a hooked forward (timed by a wrapper on the instance),
  in ms and as % of a plain forward. Target: **mix < 2 % of a forward at 16 frames**;
* **noise search**: :func:`zs2_lib.noise.dependency_chain` for F frames of the latent shape (R = 10
  seeded draws per frame, λ = 0.01, default exact solver, debias on), as % of a whole sampling run,
  taken as 20 steps × one plain CFG forward (the smaller denominator of the two, so the stricter
  figure). Target: **< 1 % of a run**. The paper's line-search solver is timed for comparison, and
  the time to draw the R×F candidates (``tests.helpers.seeded_draws``) is shown apart.

Timing: ``time.perf_counter``; plain and hooked forwards alternate, so drift hits both alike. Each
case runs up to ``--repeats`` pairs, but stops starting new pairs once ``--case-budget`` seconds are
spent (at least one pair is always run), so the large SD 1.5 cases get fewer repetitions: the
``n`` column says how many. Every model gets an untimed 2-row warm-up, and every case whose forward
is cheap an untimed warm-up pair at its own shape. The default is one thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``), since the machine is shared; ``--threads`` changes it.

Run from the repository root (pytest never collects this file: ``testpaths`` is ``tests``)::

    .venv/bin/python benchmarks/bench_core.py            # full run, about 6-8 minutes
    .venv/bin/python benchmarks/bench_core.py --quick    # tiny UNet only, a few seconds
    .venv/bin/python benchmarks/bench_core.py --frames 8 16 64 --latent 16 --models sd15
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported; --threads overrides it
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tests.helpers import SD15, TINY, make_unet, seeded_draws  # noqa: E402
from zs2_lib.attention import FrameLayout, TemporalMomentum, attn1_modules, momentum_attention  # noqa: E402
from zs2_lib.noise import dependency_chain  # noqa: E402

MODELS: dict[str, dict] = {"tiny": TINY, "sd15": SD15}
MIX_TARGET_PCT = 2.0  # momentum mix, % of one forward, at 16 frames
NOISE_TARGET_PCT = 1.0  # dependency noise search, % of one sampling run
TARGET_FRAMES = 16
CHEAP_FORWARD_S = 2.0  # warm up each case at its own shape only if a forward should take less


@dataclass(frozen=True)
class ForwardTiming:
    """One (UNet, F) case: medians over ``runs`` alternating plain/hooked pairs, in seconds."""

    model: str
    frames: int
    runs: int
    plain_s: float
    hooked_s: float
    mix_s: float

    @property
    def overhead_pct(self) -> float:
        return 100.0 * (self.hooked_s - self.plain_s) / self.plain_s

    @property
    def mix_pct(self) -> float:
        return 100.0 * self.mix_s / self.plain_s


@dataclass(frozen=True)
class NoiseTiming:
    """Dependency noise for F frames: medians over ``runs`` runs, in seconds."""

    frames: int
    runs: int
    draws_s: float
    exact_s: float
    paper_s: float


def cpu_name() -> str:
    """The CPU's model name: ``platform.processor()``, else /proc/cpuinfo, else the machine type."""
    name = platform.processor()
    if name:
        return name
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or "unknown"


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class UNetCase:
    """Inputs of one CFG UNet call for F frames: x ``[2F, 4, L, L]``, t, context, layout."""

    def __init__(self, unet: nn.Module, context_dim: int, frames: int, latent: int, tokens: int) -> None:
        generator = torch.Generator().manual_seed(frames)
        rows = 2 * frames
        self.unet = unet
        self.x = torch.randn(rows, 4, latent, latent, generator=generator)
        self.t = torch.full((rows,), 500, dtype=torch.long)
        cond = torch.randn(1, tokens, context_dim, generator=generator)
        uncond = torch.randn(1, tokens, context_dim, generator=generator)
        self.context = torch.cat([cond.expand(frames, -1, -1), uncond.expand(frames, -1, -1)])
        self.layout = FrameLayout.blocks([("cond", 0, frames), ("uncond", 0, frames)])

    @torch.no_grad()
    def plain(self) -> float:
        """Seconds of one forward without hooks."""
        return timed(lambda: self.unet(self.x, self.t, context=self.context))

    @torch.no_grad()
    def hooked(self, mu: float) -> tuple[float, float]:
        """Seconds of one forward with momentum hooks, and the seconds spent inside ``mix``."""
        with momentum_attention(self.unet, mu, self.layout) as momentum:
            spent = wrap_mix(momentum)
            seconds = timed(lambda: self.unet(self.x, self.t, context=self.context))
        return seconds, spent[0]


def wrap_mix(momentum: TemporalMomentum) -> list[float]:
    """Time every ``momentum.mix`` call (an instance attribute shadowing the method); returns the sum.

    The hooks call ``self.mix``, so they pick the wrapper up. Its own cost is two
    ``perf_counter`` calls per attn1 layer, microseconds per forward.
    """
    original = momentum.mix
    spent = [0.0]

    def mix(layer: str, context: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = original(layer, context)
        spent[0] += time.perf_counter() - start
        return out

    momentum.mix = mix  # type: ignore[method-assign]
    return spent


def time_forwards(
    name: str, case: UNetCase, frames: int, mu: float, repeats: int, budget_s: float, warm: bool
) -> ForwardTiming:
    if warm:
        case.plain()
        case.hooked(mu)
    plain: list[float] = []
    hooked: list[float] = []
    mixes: list[float] = []
    start = time.perf_counter()
    while len(plain) < repeats and (not plain or time.perf_counter() - start < budget_s):
        plain.append(case.plain())
        seconds, mix = case.hooked(mu)
        hooked.append(seconds)
        mixes.append(mix)
    medians = (statistics.median(plain), statistics.median(hooked), statistics.median(mixes))
    return ForwardTiming(name, frames, len(plain), *medians)


def time_noise(frames: int, latent: int, search: int, lam: float, repeats: int) -> NoiseTiming:
    shape = (4, latent, latent)
    draw_times: list[float] = []
    draws = seeded_draws(0, frames, search, shape)  # warm-up
    dependency_chain(draws, lam)
    dependency_chain(draws, lam, solver="paper")
    exact: list[float] = []
    paper: list[float] = []
    for seed in range(repeats):
        start = time.perf_counter()
        draws = seeded_draws(seed, frames, search, shape)
        draw_times.append(time.perf_counter() - start)
        exact.append(timed(lambda d=draws: dependency_chain(d, lam)))
        paper.append(timed(lambda d=draws: dependency_chain(d, lam, solver="paper")))
    return NoiseTiming(
        frames, repeats, statistics.median(draw_times), statistics.median(exact), statistics.median(paper)
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns right-aligned (the first left-aligned), separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def verdict(value: float, target: float) -> str:
    if value < target:
        return "ok"
    return f"MISS x{value / target:.1f}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny UNet, 8 and 16 frames, 2 runs")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), help="UNets (default: tiny sd15)")
    parser.add_argument("--frames", nargs="+", type=int, help="frame counts F (default: 8 16 64)")
    parser.add_argument("--latent", type=int, default=16, help="latent side L, 4×L×L (default 16 = 128 px)")
    parser.add_argument("--tokens", type=int, default=77, help="context tokens (default 77)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, help="max timed plain/hooked pairs per case (default 7)")
    parser.add_argument(
        "--case-budget", type=float, default=90.0, help="seconds after which a case starts no new pair"
    )
    parser.add_argument("--mu", type=float, default=0.98, help="temporal momentum μ (default 0.98)")
    parser.add_argument("--lam", type=float, default=0.01, help="dependency noise λ (default 0.01)")
    parser.add_argument("--search", type=int, default=10, help="candidate draws per frame R (default 10)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps of a run (default 20)")
    args = parser.parse_args(argv)
    args.models = args.models or (["tiny"] if args.quick else ["tiny", "sd15"])
    args.frames = args.frames or ([8, 16] if args.quick else [8, 16, 64])
    args.repeats = args.repeats or (2 if args.quick else 7)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    latent = f"4×{args.latent}×{args.latent}"
    print("ZS² core benchmark (benchmarks/bench_core.py)")
    print(
        f"torch {torch.__version__} | threads {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}) | Python {platform.python_version()}"
    )
    print(f"machine: {platform.platform()} | cpu: {cpu_name()} | cpu count {os.cpu_count()}")
    print(
        f"latent {latent} ({8 * args.latent} px), CFG batch 2F rows (cond frames, then uncond), "
        f"context [2F, {args.tokens}, dim], float32, torch.no_grad, CPU"
    )
    print(
        f"momentum μ={args.mu} on two streams (cond, uncond); plain/hooked pairs alternate, "
        f"up to {args.repeats} per case, no new pair after {args.case_budget:g} s"
    )
    print()

    forwards: list[ForwardTiming] = []
    params: dict[str, tuple[float, int]] = {}
    for name in args.models:
        config = MODELS[name]
        start = time.perf_counter()
        unet = make_unet(config)
        built = time.perf_counter() - start
        count = sum(p.numel() for p in unet.parameters())
        params[name] = (count / 1e6, len(attn1_modules(unet)))
        warmup = UNetCase(unet, config["context_dim"], 1, args.latent, args.tokens)
        warmup.plain()
        warmup.hooked(args.mu)
        per_row = warmup.plain() / 2
        print(
            f"[{name}] built in {built:.1f} s, {count / 1e6:.1f} M params, "
            f"2-row forward {2 * per_row:.3f} s, peak RSS {peak_rss_gib():.2f} GiB",
            flush=True,
        )
        for frames in args.frames:
            case = UNetCase(unet, config["context_dim"], frames, args.latent, args.tokens)
            warm = per_row * 2 * frames < CHEAP_FORWARD_S
            timing = time_forwards(name, case, frames, args.mu, args.repeats, args.case_budget, warm)
            forwards.append(timing)
            print(
                f"[{name}] F={frames}: {timing.runs} pair(s), plain {timing.plain_s:.3f} s, "
                f"hooked {timing.hooked_s:.3f} s, mix {1e3 * timing.mix_s:.2f} ms, "
                f"peak RSS {peak_rss_gib():.2f} GiB",
                flush=True,
            )
        del unet, warmup, case

    noise: dict[int, NoiseTiming] = {}
    noise_repeats = 2 if args.quick else 5
    for frames in args.frames:
        noise[frames] = time_noise(frames, args.latent, args.search, args.lam, noise_repeats)
        print(
            f"[noise] F={frames}: exact {1e3 * noise[frames].exact_s:.1f} ms, "
            f"paper {1e3 * noise[frames].paper_s:.1f} ms",
            flush=True,
        )

    print()
    print("UNet forward and temporal momentum (median of n alternating plain/hooked pairs)")
    rows = []
    for t in forwards:
        millions, layers = params[t.model]
        target = verdict(t.mix_pct, MIX_TARGET_PCT) if t.frames == TARGET_FRAMES else "-"
        rows.append(
            [
                t.model,
                f"{millions:.1f}M",
                str(layers),
                str(t.frames),
                str(2 * t.frames),
                str(t.runs),
                f"{t.plain_s:.3f}",
                f"{t.hooked_s:.3f}",
                f"{t.overhead_pct:+.2f}%",
                f"{1e3 * t.mix_s:.2f}",
                f"{t.mix_pct:.3f}%",
                target,
            ]
        )
    headers = ["unet", "params", "attn1", "F", "rows", "n", "plain s", "hooked s", "overhead"]
    headers += ["mix ms", "mix %fwd", f"mix<{MIX_TARGET_PCT:g}%@F={TARGET_FRAMES}"]
    print(format_table(headers, rows))
    print()

    print(
        f"Dependency noise search, R={args.search}, λ={args.lam}, debias on, latent {latent} "
        f"(median of {noise_repeats}); run = {args.steps} steps × one plain CFG forward"
    )
    rows = []
    for t in forwards:
        n = noise[t.frames]
        run = args.steps * t.plain_s
        exact_pct = 100.0 * n.exact_s / run
        rows.append(
            [
                t.model,
                str(t.frames),
                f"{run:.1f}",
                f"{1e3 * n.draws_s:.1f}",
                f"{1e3 * n.exact_s:.1f}",
                f"{exact_pct:.3f}%",
                f"{1e3 * n.paper_s:.1f}",
                f"{100.0 * n.paper_s / run:.3f}%",
                verdict(exact_pct, NOISE_TARGET_PCT),
            ]
        )
    headers = ["unet", "F", "run s", "draws ms", "exact ms", "exact %run", "paper ms", "paper %run"]
    headers += [f"exact<{NOISE_TARGET_PCT:g}%"]
    print(format_table(headers, rows))
    print()
    print(
        "mix = sum over attn1 layers of TemporalMomentum.mix during one hooked forward; "
        "%fwd and overhead are relative to the plain forward."
    )
    print("draws = making the R×F seeded candidates (tests.helpers.seeded_draws), not in the search figures.")
    print(f"total {time.perf_counter() - wall:.1f} s, peak RSS {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
