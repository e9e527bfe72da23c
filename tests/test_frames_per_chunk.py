"""Interrupt and Skip are judged per chunk when its sampling ends; a video never has a hole."""

from __future__ import annotations

from typing import Any

import pytest

from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ZS2Params
from zs2_lib.webui.features.frames import Frames
from zs2_lib.webui.run import Run, finish_stale_runs


@pytest.fixture(autouse=True)
def _finish_runs():
    """These tests read a run's frames after generating; finish the runs when each test ends."""
    yield
    finish_stale_runs()


class Host:
    """Only what Frames asks: whether Interrupt or Skip is set right now."""

    def __init__(self) -> None:
        self.flag: str | None = None

    def cut_short(self) -> str | None:
        return self.flag


class Processing:
    def __init__(self, host: Host, events: dict[tuple[int, str], str | None]) -> None:
        self.host = host
        self.events = events  # (batch, "sampling" | "decode") → the flag set at that moment
        self.iteration = 0
        self.batch_index = 0

    def sample(self, **kwargs: Any) -> str:
        self.host.flag = self.events.get((self.iteration, "sampling"), self.host.flag)
        return "latents"

    def close(self) -> None:
        pass


def generate(frames: int, chunk: int, videos: int, events: dict) -> tuple[Run, Frames]:
    """A1111's batch loop: Skip resets at each batch, Interrupt stops before the next one."""
    host = Host()
    p = Processing(host, events)
    params = ZS2Params(enabled=True, frames=frames, chunk=chunk)
    plan = ChunkPlan(frames, chunk, videos=videos)
    feature = Frames()
    run = Run(p, host, [feature], params=params, plan=plan)
    run.start()
    for batch in range(plan.batches):
        p.iteration = batch
        if host.flag == "Skip":
            host.flag = None
        if host.flag == "Interrupt":
            break
        assert p.sample(conditioning=None) == "latents"
        host.flag = events.get((batch, "decode"), host.flag)
        for index in range(plan.batch_size):
            p.batch_index = index
            run.emit("frame", (batch, index))
    return run, feature


def test_an_uninterrupted_run_keeps_every_frame():
    run, frames = generate(12, 4, 1, {})
    assert len(frames.videos[0]) == 12
    assert frames.report(run, 0) == (12, "")


def test_skip_during_a_chunk_ends_the_video_before_it_without_a_hole():
    run, frames = generate(12, 4, 1, {(1, "sampling"): "Skip"})
    assert frames.videos[0] == [(0, i) for i in range(4)]  # chunk 2 sampled after, but left out
    count, why = frames.report(run, 0)
    assert count == 4
    assert why.startswith("Skip during chunk 2 of 3")


def test_interrupt_after_a_chunk_finished_sampling_keeps_that_chunk():
    run, frames = generate(12, 4, 1, {(1, "decode"): "Interrupt"})
    assert len(frames.videos[0]) == 8  # chunk 1 was complete when Interrupt came
    count, why = frames.report(run, 0)
    assert count == 8
    assert why.startswith("Interrupt")


@pytest.mark.parametrize("flag", ["Skip", "Interrupt"])
def test_a_cut_in_one_video_leaves_the_others_whole(flag):
    run, frames = generate(4, 2, 2, {(0, "sampling"): flag})
    assert 0 not in frames.videos
    assert frames.report(run, 0)[0] == 0
    expected = 4 if flag == "Skip" else 0  # Skip: the next video is made in full
    assert len(frames.videos.get(1, [])) == expected
