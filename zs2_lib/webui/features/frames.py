"""The finished frames of each video, kept (not copied) until the videos are written."""

from __future__ import annotations

from typing import Any

from zs2_lib.webui.run import Feature, Run


class Frames(Feature):
    """Collect each video's frames in order; a chunk cut short by Interrupt or Skip is left out.

    Frames of a chunk whose sampling was cut short are half-denoised, so the video leaves that chunk
    out; frames past the end of the video (balanced chunks sample a few more) are left out too.
    """

    def __init__(self) -> None:
        self.videos: dict[int, list[Any]] = {}  # PIL images A1111 also returns: no copies
        self.incomplete: set[int] = set()

    def install(self, run: Run) -> None:
        run.undo.callback(self.videos.clear)

    def frame(self, run: Run, image: Any) -> None:
        p = run.p
        video, _, first_frame = run.plan.locate(p.iteration)
        if run.host.cut_short():
            self.incomplete.add(p.iteration)
            return
        frames = self.videos.setdefault(video, [])
        if first_frame + int(getattr(p, "batch_index", 0)) < run.params.frames:
            frames.append(image)
