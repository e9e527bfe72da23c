"""The finished frames of each video, kept (not copied) until the videos are written.

Interrupt and Skip are judged per chunk, at the moment sampling of that chunk ends (a wrap of
``p.sample`` on this ``p``): a chunk whose sampling was cut short is half-denoised, so its video
ends before it, and so do the chunks after it (their attention state follows the cut one), so a
video never has a hole. :meth:`Frames.report` says how many frames each video has, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zs2_lib.webui.run import Feature, Run


@dataclass(frozen=True)
class Cut:
    """Where a video ends early: the first chunk left out and what cut it short."""

    chunk: int
    reason: str


class Frames(Feature):
    """Collect each video's frames in order, up to its first chunk cut short by Interrupt or Skip."""

    def __init__(self) -> None:
        self.videos: dict[int, list[Any]] = {}  # PIL images A1111 also returns: no copies
        self.cuts: dict[int, Cut] = {}
        self.sampled: set[int] = set()  # A1111 batch numbers whose sampling ran to its end
        self.left_out: list[Any] = []  # images A1111 returns that no video holds (cut chunks, spare frames)

    def install(self, run: Run) -> None:
        run.undo.callback(self.videos.clear)
        run.undo.callback(self.left_out.clear)
        original = run.p.sample

        def sample(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self._sampling_ended(run)
            return result

        run.set_attribute(run.p, "sample", sample)

    def _sampling_ended(self, run: Run) -> None:
        """Judge the chunk now: cut short if Interrupt or Skip came before its sampling returned."""
        batch = int(run.p.iteration)
        video, chunk, _ = run.plan.locate(batch)
        reason = run.host.cut_short()
        if reason:
            if video not in self.cuts or chunk < self.cuts[video].chunk:
                self.cuts[video] = Cut(chunk, str(reason))
        else:
            self.sampled.add(batch)

    def frame(self, run: Run, image: Any) -> None:
        p = run.p
        video, chunk, first_frame = run.plan.locate(p.iteration)
        cut = self.cuts.get(video)
        if p.iteration not in self.sampled or (cut is not None and chunk >= cut.chunk):
            self.left_out.append(image)
            return
        frames = self.videos.setdefault(video, [])
        if first_frame + int(getattr(p, "batch_index", 0)) < run.params.frames:
            frames.append(image)
        else:  # the last chunk's spare frames (balanced chunks may overshoot the frames asked for)
            self.left_out.append(image)

    def report(self, run: Run, video: int) -> tuple[int, str]:
        """``(frames, why the video is shorter than asked, or "")`` for one video of the run."""
        count = len(self.videos.get(video, []))
        plan = run.plan
        cut = self.cuts.get(video)
        if cut is not None:
            kept = cut.chunk * plan.batch_size
            why = (
                f"{cut.reason} during chunk {cut.chunk + 1} of {plan.chunks}: the video ends after frame "
                f"{kept} (chunks after a cut one are left out, so the video has no hole)"
            )
            return count, why
        if count < run.params.frames:
            return count, "Interrupt: sampling stopped before the rest of the video's chunks"
        return count, ""
