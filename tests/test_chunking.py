"""Balanced chunks of a video over A1111 batches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zs2_lib.chunking import ChunkPlan


def test_examples():
    plan = ChunkPlan(frames=40, max_chunk=16, videos=2)
    assert (plan.chunks, plan.batch_size, plan.batches) == (3, 14, 6)
    assert [plan.locate(b) for b in range(6)] == [
        (0, 0, 0),
        (0, 1, 14),
        (0, 2, 28),
        (1, 0, 0),
        (1, 1, 14),
        (1, 2, 28),
    ]
    assert (ChunkPlan(16, 16).chunks, ChunkPlan(16, 16).batch_size) == (1, 16)
    assert (ChunkPlan(8, 16).chunks, ChunkPlan(8, 16).batch_size) == (1, 8)


@given(st.integers(1, 4096), st.integers(1, 4096))
def test_chunks_cover_the_video_with_less_than_one_spare_frame_per_chunk(frames, max_chunk):
    plan = ChunkPlan(frames, max_chunk)
    assert plan.batch_size <= max_chunk
    assert frames <= plan.chunks * plan.batch_size < frames + plan.chunks
    assert plan.locate(plan.chunks - 1)[2] < frames  # the last chunk holds at least one real frame
