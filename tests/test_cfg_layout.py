"""The CFG row layout of A1111's denoiser batch (AND prompts, uncond, InstructPix2Pix, splits)."""

from __future__ import annotations

from zs2_lib.cfg_layout import denoiser_layout


def keys(layout):
    return [(row[0][1:], row[1]) if row else None for row in layout.rows]


def test_plain_cfg_is_cond_frames_then_uncond_frames():
    layout = denoiser_layout([1, 1, 1])
    assert keys(layout) == [(("cond", 0, 0), 0), (("cond", 0, 0), 1), (("cond", 0, 0), 2)] + [
        (("uncond",), f) for f in range(3)
    ]
    assert [(s.rows, s.first_frame) for s in layout.streams] == [((0, 1, 2), 0), ((3, 4, 5), 0)]


def test_and_prompts_are_one_stream_per_sub_prompt():
    """x_in repeats each frame once per sub-prompt: f0s0, f0s1, f1s0, f1s1, then uncond."""
    layout = denoiser_layout([2, 2], first_frame=10)
    streams = {s.key[1:]: (s.rows, s.first_frame) for s in layout.streams}
    assert streams == {
        ("cond", 0, 0): ((0, 2), 10),
        ("cond", 1, 0): ((1, 3), 10),
        ("uncond",): ((4, 5), 10),
    }


def test_edit_models_get_a_third_stream_and_skipped_uncond_can_be_left_out():
    assert [s.key[1:] for s in denoiser_layout([1, 1], image_uncond=True).streams] == [
        ("cond", 0, 0),
        ("uncond",),
        ("image_uncond",),
    ]
    assert len(denoiser_layout([1, 1], uncond=False)) == 2


def test_uneven_sub_prompts_break_the_stream_instead_of_skipping_frames():
    layout = denoiser_layout([2, 1, 2])
    sub1 = [(s.rows, s.first_frame) for s in layout.streams if s.key[1:3] == ("cond", 1)]
    assert sub1 == [((1,), 0), ((4,), 2)]


def test_slices_of_the_layout_follow_the_rows_a_unet_call_gets():
    layout = denoiser_layout([2, 2, 2], tag=("hr", 3))
    first, second = layout.slice(0, 4), layout.slice(4, 9)
    assert [(s.key, s.first_frame, len(s.rows)) for s in first.streams] == [
        ((("hr", 3), "cond", 0, 0), 0, 2),
        ((("hr", 3), "cond", 1, 0), 0, 2),
    ]
    assert [(s.key[1:], s.first_frame, len(s.rows)) for s in second.streams] == [
        (("cond", 0, 0), 2, 1),
        (("cond", 1, 0), 2, 1),
        (("uncond",), 0, 3),
    ]
