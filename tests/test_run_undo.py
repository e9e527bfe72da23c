"""A run's one undo stack: every feature installed on a fake ``p``, an exception at each step, nothing left.

The fake host stands in for A1111 (``zs2_lib.webui.host.A1111``) with a real tiny ldm UNet, a batch
RNG like A1111's ``ImageRNG`` and an SDE sampler; the steps are the host's events in the order
A1111 sends them for a txt2img run with hires fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from tests.helpers import CONTEXT_DIM, make_unet
from zs2_lib.attention import attn1_modules
from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ZS2Params
from zs2_lib.webui.features.batch_plan import BatchPlan
from zs2_lib.webui.features.encoding import Encoding
from zs2_lib.webui.features.frames import Frames
from zs2_lib.webui.features.momentum import Momentum
from zs2_lib.webui.features.noise import InitialNoise
from zs2_lib.webui.features.prompt_travel import PromptTravel
from zs2_lib.webui.features.refusal import Refusal, RefusingRNG
from zs2_lib.webui.features.sde import BrownianNoise
from zs2_lib.webui.run import Run, active_runs, run_of

FRAMES = 4
LATENT = (4, 8, 8)


class InjectedError(Exception):
    """The failure injected at one step."""


class FakeRNG:
    """Like A1111's ``ImageRNG``: one seeded generator per image, ``next()`` gives ``[B, C, H, W]``."""

    def __init__(self, seeds: list[int]) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def next(self) -> torch.Tensor:
        return torch.stack([torch.randn(LATENT, generator=g) for g in self.generators])


class FakeHost:
    def __init__(self) -> None:
        self.model = make_unet()
        self.settings: dict[str, Any] = {"token_merging_ratio": 0.5, "hypertile_enable_unet": True}

    def unet(self) -> torch.nn.Module:
        return self.model

    def is_edit_model(self) -> bool:
        return False

    def cut_short(self) -> bool:
        return False

    def option(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def stored_option(self, key: str) -> Any:
        return self.settings.get(key)

    def set_option(self, key: str, value: Any) -> None:
        self.settings[key] = value

    def frame_draw(self, image_rng: Any) -> None:
        return None

    def brownian_sampler(self, name: str) -> bool:
        return True


class FakeSampler:
    """An SDE sampler: its Brownian trees are made by ``create_noise_sampler``."""

    config = SimpleNamespace(options={"brownian_noise": True})

    def create_noise_sampler(self, x: torch.Tensor, sigmas: Any, p: Any) -> Callable[..., torch.Tensor]:
        return lambda sigma, sigma_next: torch.randn_like(x)


class FakeProcessing:
    """The attributes of A1111's ``StableDiffusionProcessing`` that a run reads or changes."""

    def __init__(self) -> None:
        self.batch_size = 1
        self.n_iter = 1
        self.do_not_save_grid = False
        self.override_settings: dict[str, Any] = {}
        self.token_merging_ratio = 0.3
        self.sampler_name = "DPM++ 2M SDE"
        self.enable_hr = True
        self.hr_sampler_name = "DPM++ 2M SDE"
        self.is_hr_pass = False
        self.do_not_save_samples = True  # the videos' folder is a temporary one, removed by the undo
        self.iteration = 0
        self.batch_index = 0
        self.rng: Any = None
        self.sampler = FakeSampler()
        self.comments: list[str] = []
        self.closed = 0

    def comment(self, text: str) -> None:
        self.comments.append(text)

    def sample(self, *args: Any, **kwargs: Any) -> None:
        return None

    def close(self) -> None:
        self.closed += 1

    def get_conds_with_caching(self, function: Any, prompts: list[str], *args: Any) -> Any:
        return function(prompts)


def features() -> list[Any]:
    return [
        BatchPlan(),
        InitialNoise(),
        Momentum(offload=True),
        BrownianNoise(),
        Frames(),
        Encoding(),
        PromptTravel(),
    ]


def cfg_params(p: FakeProcessing, x: torch.Tensor) -> SimpleNamespace:
    """What ``on_cfg_denoiser`` hands over: cond rows then uncond rows, one per frame."""
    denoiser = SimpleNamespace(p=p, image_cfg_scale=None, sampler=None)
    frames = x.shape[0]
    return SimpleNamespace(
        denoiser=denoiser, x=torch.cat([x, x]), text_cond=torch.zeros(frames, 77, CONTEXT_DIM)
    )


def unet_call(run: Run, x: torch.Tensor) -> None:
    unet = run.host.unet()
    with torch.no_grad():
        unet(x, torch.ones(x.shape[0]), context=torch.zeros(x.shape[0], 77, CONTEXT_DIM))


def steps(p: FakeProcessing, host: FakeHost) -> list[tuple[str, Callable[[], None]]]:
    """The host's events for one chunk with hires fix, in A1111's order."""
    state: dict[str, Any] = {}

    def start() -> None:
        params = ZS2Params(enabled=True, frames=FRAMES, chunk=2)
        plan = ChunkPlan(params.frames, params.chunk)
        state["run"] = Run(p, host, features(), params=params, plan=plan)
        state["run"].start()

    def batch() -> None:
        p.rng = FakeRNG(list(range(p.batch_size)))  # A1111 builds a new p.rng every batch
        state["run"].begin_batch(0)
        state["x"] = p.rng.next()

    def sampling() -> None:
        state["run"].emit("sampling", state["x"])
        p.sampler.create_noise_sampler(state["x"], None, p)(1.0, 0.5)

    def evaluation() -> None:
        params = cfg_params(p, state["x"])
        state["run"].emit("evaluation", params)
        unet_call(state["run"], params.x)

    def evaluated() -> None:
        state["run"].emit("evaluated")

    def frame() -> None:
        state["run"].emit("frame", object())

    def hires() -> None:
        p.is_hr_pass = True
        p.sampler = FakeSampler()
        state["run"].emit("sampling", torch.randn(p.batch_size, *LATENT))
        evaluation()

    def finish() -> None:
        state["run"].finish()

    return [
        ("start", start),
        ("batch", batch),
        ("sampling", sampling),
        ("evaluation", evaluation),
        ("evaluated", evaluated),
        ("frame", frame),
        ("hires", hires),
        ("finish", finish),
    ]


def hooks_on(model: torch.nn.Module) -> int:
    return sum(len(module._forward_pre_hooks) for module in model.modules())


def leftovers(p: FakeProcessing, before: dict[str, Any], host: FakeHost) -> list[str]:
    """Everything of a run still on the host: changed or added attributes, hooks, wraps, live runs."""
    found = [f"p.{name}" for name, value in vars(p).items() if name not in before]
    found += [
        f"p.{name}"
        for name, value in before.items()
        if name not in ("rng", "sampler", "is_hr_pass", "closed") and vars(p).get(name) is not value
    ]
    if isinstance(p.rng, RefusingRNG) or type(p.rng).__module__.startswith("zs2_lib"):
        found.append("p.rng")
    found += [f"sampler.{name}" for name in vars(p.sampler)]
    if hooks_on(host.model):
        found.append(f"{hooks_on(host.model)} hooks on the UNet")
    found += ["a live run"] * sum(run.p is p for run in active_runs())
    return found


@pytest.mark.parametrize("failing", range(8), ids=[name for name, _ in steps(FakeProcessing(), None)])
def test_an_exception_at_any_step_leaves_nothing_behind(failing: int) -> None:
    host = FakeHost()
    p = FakeProcessing()
    before = dict(vars(p))
    sequence = steps(p, host)

    def process() -> None:
        with contextlib.closing(p):  # A1111: `with closing(p):` around processing
            for _, step in sequence[:failing]:
                step()
            raise InjectedError

    with pytest.raises(InjectedError):
        process()
    assert leftovers(p, before, host) == []
    assert p.closed == 1  # the original close still ran


def test_the_run_really_changes_the_host_before_it_finishes() -> None:
    """The check above is not vacuous: mid-run, every kind of change is in place."""
    host = FakeHost()
    p = FakeProcessing()
    before = dict(vars(p))
    sequence = steps(p, host)
    for _, step in sequence[:-1]:
        step()
    found = leftovers(p, before, host)
    for expected in ("p._zs2_run", "p.close", "p.sample", "p.batch_size", "p.n_iter", "p.do_not_save_grid"):
        assert expected in found
    assert {"p.override_settings", "p.token_merging_ratio", "p.rng", "sampler.create_noise_sampler"} <= set(
        found
    )
    assert hooks_on(host.model) == len(attn1_modules(host.model)) + 1  # attn1 hooks and the row cursor
    assert (p.batch_size, p.n_iter) == (2, 2)
    assert p.override_settings == {"hypertile_enable_unet": False, "token_merging_ratio": 0.0}
    run = run_of(p)
    assert run is not None
    assert run.carried_bytes() > 0
    sequence[-1][1]()
    assert leftovers(p, before, host) == []
    assert run_of(p) is None


def test_finish_twice_and_close_after_finish_are_harmless() -> None:
    host = FakeHost()
    p = FakeProcessing()
    before = dict(vars(p))
    for _, step in steps(p, host):
        step()
    p.close()
    assert p.closed == 1
    assert leftovers(p, before, host) == []


def test_a_refusal_run_refuses_at_the_first_draw_and_leaves_nothing() -> None:
    p = FakeProcessing()
    before = dict(vars(p))
    run = Run(p, FakeHost(), [Refusal(ValueError("frames: 0 is out of range"))])
    run.start()
    base = p.rng = FakeRNG([0])
    run.begin_batch(0)
    with pytest.raises(ValueError, match="frames"):
        p.rng.next()
    p.close()
    assert p.rng is base
    assert leftovers(p, before, FakeHost()) == []


def test_a_page_refusal_says_its_message_stops_the_batches_and_restores_the_flag_without_raising() -> None:
    """The page's refusal raises nothing (A1111's UI would print a traceback): a comment and the stop flag."""

    class Job:
        interrupted = False

    class Host(FakeHost):
        job = Job()

        def job_state(self) -> Job:
            return self.job

    class Page(FakeProcessing):
        def __init__(self) -> None:
            super().__init__()
            self.comments: dict[str, int] = {}

        def comment(self, text: str) -> None:
            self.comments[text] = 1

        def get_token_merging_ratio(self) -> float:
            return self.token_merging_ratio

    p, host = Page(), Host()
    message = "ZS² Video: Frames (frames): 0 is out of range (accepted range 1 to 4096)"
    run = Run(p, host, [Refusal(ValueError(message), message, quietly=True)])
    run.start()
    assert p.get_token_merging_ratio() == 0.3  # the host's own value: no exception
    assert list(p.comments) == [message]
    assert host.job.interrupted is True  # process_images makes no batch
    p.close()
    assert host.job.interrupted is False
    assert "get_token_merging_ratio" not in vars(p)


def test_a_wrapper_set_on_top_of_ours_stays_and_still_finishes_the_run() -> None:
    """Another script that wraps ``p.close`` after us keeps its wrapper; ours is gone underneath."""
    p = FakeProcessing()
    run = Run(p, FakeHost(), [])
    run.start()
    ours = p.close
    calls = []

    def theirs() -> None:
        calls.append("theirs")
        ours()

    p.close = theirs
    p.close()
    assert calls == ["theirs"]
    assert run.finished
    assert p.close is theirs
