"""Which rows of A1111's CFG batch are which (stream, frame): the momentum layout of one evaluation.

A1111's ``CFGDenoiser.forward`` builds ``x_in`` as, for each image i of the batch, ``repeats[i]``
cond rows (one per AND sub-prompt), then one uncond row per image, then, for InstructPix2Pix
models, one image-uncond row per image. It may then drop the uncond rows (skipped uncond steps) and
runs the UNet on all rows at once or on consecutive slices of them. Every CFG branch is its own
temporal-momentum stream (DESIGN.md §1.2), so frames only ever attend to frames of their own branch.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

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
