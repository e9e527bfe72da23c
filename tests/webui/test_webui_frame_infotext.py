"""Every frame's infotext leads back to its video (frame index, base seed); pasting it restores the video."""

from __future__ import annotations

import re

from tests.webui.webui_client import max_abs_diff, txt2img_request, zs2_args
from zs2_lib.names import FRAME_INFOTEXT_KEY


def _value(infotext: str, key: str) -> str | None:
    match = re.search(rf"(?:^|, ){re.escape(key)}: ([^,\n]*)", infotext, re.MULTILINE)
    return match.group(1) if match else None


def test_each_frame_names_its_index_and_the_video_seed_and_pasting_frame_four_regenerates_the_video(
    zs2_server, measure
):
    video = zs2_server.ok(txt2img_request(zs2_args(), seed=1234))
    infotexts = video.info["infotexts"]
    assert video.info["all_seeds"] == [1234 + k for k in range(8)]  # A1111's own draw per frame
    assert [_value(text, "Seed") for text in infotexts] == ["1234"] * 8  # the video's seed
    assert [_value(text, FRAME_INFOTEXT_KEY) for text in infotexts] == [str(k) for k in range(8)]

    # "Send to txt2img" of frame 4 over the API: the request takes everything from the infotext.
    body = {key: value for key, value in txt2img_request().items() if key not in ("prompt", "seed", "steps")}
    again = zs2_server.ok({**body, "infotext": infotexts[4]})

    assert again.info["seed"] == 1234  # not 1238, frame 4's own seed
    assert len(again.frames) == 8
    difference = max_abs_diff(again.frames, video.frames)
    measure(f"frame 4's infotext pasted: seed {again.info['seed']}, max |frames - original| = {difference}")
    assert difference == 0


def test_each_frame_names_the_video_variation_seed_and_none_without_variation(zs2_server):
    varied = zs2_server.ok(txt2img_request(zs2_args(frames=4), subseed=99, subseed_strength=0.3))
    assert [_value(text, "Variation seed") for text in varied.info["infotexts"]] == ["99"] * 4
    plain = zs2_server.ok(txt2img_request(zs2_args(frames=4)))
    assert [_value(text, "Variation seed") for text in plain.info["infotexts"]] == [None] * 4
