"""Which rows of a CFG batch are which (stream, frame): the momentum layout of one UNet call.

A1111 (:func:`denoiser_layout`) and Forge (:func:`chunked_layout`) lay CFG batches out differently.

A1111's ``CFGDenoiser.forward`` builds ``x_in`` as, for each image i of the batch, ``repeats[i]``
cond rows (one per AND sub-prompt), then one uncond row per image, then, for InstructPix2Pix
models, one image-uncond row per image. It may then drop the uncond rows (skipped uncond steps) and
runs the UNet on all rows at once or on consecutive slices of them. Every CFG branch is its own
temporal-momentum stream (DESIGN.md §1.2), so frames only ever attend to frames of their own branch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from zs2_lib.attention import FrameLayout, Row


def denoiser_layout(
    repeats: Sequence[int],
    *,
    first_frame: int = 0,
    uncond: bool = True,
    image_uncond: bool = False,
    tag: Hashable = (),
) -> FrameLayout:
    """The layout of one CFG evaluation's ``x_in`` for a batch of ``len(repeats)`` frames.

    Args:
        repeats: cond rows (AND sub-prompts) per frame, in batch order.
        first_frame: global index of the batch's first frame (chunks of a long video).
        uncond: whether the uncond block follows the cond rows.
        image_uncond: whether InstructPix2Pix's image-uncond block follows the uncond block.
        tag: prepended to every stream key, e.g. (pass, evaluation) so carried state is matched
            to the same evaluation of the next chunk.

    Sub-prompt j of consecutive frames forms one stream; if some frame has fewer sub-prompts, the
    stream breaks there and the next run of frames starts a new one.
    """
    rows: list[Row | None] = []
    runs: dict[int, int] = {}
    previous: dict[int, int] = {}
    for i, count in enumerate(repeats):
        for j in range(count):
            if previous.get(j) != i - 1:
                runs[j] = runs.get(j, -1) + 1
            previous[j] = i
            rows.append(((tag, "cond", j, runs[j]), first_frame + i))
    frames = range(first_frame, first_frame + len(repeats))
    if uncond:
        rows += [((tag, "uncond"), f) for f in frames]
    if image_uncond:
        rows += [((tag, "image_uncond"), f) for f in frames]
    return FrameLayout(tuple(rows))


UNCOND = 1
"""Forge's mark of an uncond chunk in ``transformer_options["cond_or_uncond"]`` (0 marks cond)."""


@dataclass
class ChunkCounter:
    """How many cond and uncond chunks the UNet calls of one CFG evaluation have had so far.

    Forge runs an evaluation's chunks in one UNet call or in several; the k-th cond chunk of an
    evaluation is the same AND sub-prompt at every step, so ``(kind, k)`` names its stream.
    """

    cond: int = 0
    uncond: int = 0

    def take(self, mark: int) -> int:
        """The ordinal of the next chunk of that kind, counted."""
        if mark == UNCOND:
            self.uncond += 1
            return self.uncond - 1
        self.cond += 1
        return self.cond - 1


def chunked_layout(
    cond_or_uncond: Sequence[int],
    frames: int,
    *,
    first_frame: int = 0,
    counter: ChunkCounter | None = None,
    tag: Hashable = (),
) -> FrameLayout:
    """The layout of one Forge UNet call: ``len(cond_or_uncond)`` chunks of ``frames`` rows each.

    Forge (``calc_cond_uncond_batch``) stacks whole chunks, one per condition, each holding every
    frame of the batch in order, and names each chunk's kind in ``cond_or_uncond``: usually
    ``[1, 0]`` (uncond first), ``[1, 0, 0]`` with an AND prompt, ``[0]`` at CFG scale 1, or one
    chunk per call when memory is short. Chunk k of a kind is stream ``(tag, kind, k)``, counted
    across the calls of one evaluation by ``counter`` (a fresh one per evaluation).

    Args:
        cond_or_uncond: the chunks' kinds in row order (1 uncond, 0 cond).
        frames: rows per chunk, i.e. the batch's frames.
        first_frame: global index of the batch's first frame (chunks of a long video).
        counter: the evaluation's chunk counter, shared by its UNet calls (None: this call alone).
        tag: prepended to every stream key, as in :func:`denoiser_layout`.
    """
    counter = ChunkCounter() if counter is None else counter
    rows: list[Row | None] = []
    for mark in cond_or_uncond:
        kind = "uncond" if mark == UNCOND else "cond"
        key = (tag, kind, counter.take(mark))
        rows += [(key, first_frame + i) for i in range(frames)]
    return FrameLayout(tuple(rows))
