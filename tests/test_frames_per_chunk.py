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


def generate(frames: int, chunk: int, videos: int, events: dict) -> tuple[Frames, dict[int, list], list]:
    """A1111's batch loop (Skip resets at each batch, Interrupt stops before the next).

    Returns the feature, the videos' frames and the reports, taken before the run finishes.
    """
    host = Host()
    p = Processing(host, events)
    params = ZS2Params(enabled=True, frames=frames, chunk=chunk)
    plan = ChunkPlan(frames, chunk, videos=videos)
    feature = Frames()
    run = Run(p, host, [feature], params=params, plan=plan)
    run.start()
    try:
        _batches(run, p, host, plan, events)
        videos = {video: list(images) for video, images in feature.videos.items()}
        return feature, videos, [feature.report(run, video) for video in range(plan.videos)]
    finally:
        run.finish()  # no live run left for other tests


def _batches(run: Run, p: Processing, host: Host, plan: ChunkPlan, events: dict) -> None:
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


def test_an_uninterrupted_run_keeps_every_frame():
    _frames, videos, reports = generate(12, 4, 1, {})
    assert len(videos[0]) == 12
    assert reports[0] == (12, "")


def test_skip_during_a_chunk_ends_the_video_before_it_without_a_hole():
    _frames, videos, reports = generate(12, 4, 1, {(1, "sampling"): "Skip"})
    assert videos[0] == [(0, i) for i in range(4)]  # chunk 2 sampled after, but left out
    count, why = reports[0]
    assert count == 4
    assert why.startswith("Skip during chunk 2 of 3")


def test_interrupt_after_a_chunk_finished_sampling_keeps_that_chunk():
    _frames, videos, reports = generate(12, 4, 1, {(1, "decode"): "Interrupt"})
    assert len(videos[0]) == 8  # chunk 1 was complete when Interrupt came
    count, why = reports[0]
    assert count == 8
    assert why.startswith("Interrupt")


@pytest.mark.parametrize("flag", ["Skip", "Interrupt"])
def test_a_cut_in_one_video_leaves_the_others_whole(flag):
    frames, videos, _reports = generate(4, 2, 2, {(0, "sampling"): flag})
    assert 0 not in videos
    assert frames.cuts[0].reason == flag
    expected = 4 if flag == "Skip" else 0  # Skip: the next video is made in full
    assert len(videos.get(1, [])) == expected
