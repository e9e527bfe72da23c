"""How a video of F frames is laid out over A1111 batches (DESIGN.md §1.3).

Both halves of ZS² are causal, so a video can be sampled chunk by chunk, one A1111 batch each,
carrying the last frame's noise and attention context into the next chunk: the result equals
the one-batch video while memory depends on the chunk size only. All batches of an A1111 run have
the same size, so the chunks are balanced (40 frames in chunks of at most 16 → 3 chunks of 14) and
frames past the end of the video (2 here) are sampled but left out of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkPlan:
    """Batches for ``videos`` videos of ``frames`` frames each, at most ``max_chunk`` per batch."""

    frames: int
    max_chunk: int
    videos: int = 1

    @property
    def chunks(self) -> int:
        """Batches per video."""
        return math.ceil(self.frames / min(self.max_chunk, self.frames))

    @property
    def batch_size(self) -> int:
        """Frames per batch (balanced over the chunks)."""
        return math.ceil(self.frames / self.chunks)

    @property
    def batches(self) -> int:
        """A1111's batch count: every chunk of every video."""
        return self.videos * self.chunks

    def first_image(self, video: int) -> int:
        """Index of a video's first image among all images of the run."""
        return video * self.chunks * self.batch_size

    def locate(self, batch: int) -> tuple[int, int, int]:
        """``(video, chunk, first frame)`` of an A1111 batch number."""
        video, chunk = divmod(batch, self.chunks)
        return video, chunk, chunk * self.batch_size
