"""From UI/API script args to params, the infotext key and paste, and input errors."""

from __future__ import annotations

import dataclasses

import pytest

from zs2_lib.params import FIELDS, ParamError, ZS2Params
from zs2_lib.script_args import (
    FIELD_NAMES,
    INFOTEXT_KEY,
    InputError,
    infotext_value,
    params_from_args,
    wants_enabled,
)

UI_VALUES = [
    True,
    24,
    12,
    "0:0.01, 16:0.05",
    "0.95",
    "dependency",
    "0.9",
    10,
    "exact",
    True,
    ["mp4", "webp"],
    "pingpong",
    8,
    "independent",
    "",  # video: the img2img video input's empty path box
    0,
    0,
    1,
    True,
    "sample",
    "",  # control_video: the UI's empty path box
    "",  # control_videos: the hidden API-only box
    False,
    False,
]


def test_positional_ui_values_map_by_field_order():
    assert tuple(spec.name for spec in FIELDS) == FIELD_NAMES
    params = params_from_args(UI_VALUES)
    assert params.frames == 24
    assert params.fps == 12
    assert str(params.lambda_) == "0:0.01, 16:0.05"
    assert params.formats == ("mp4", "webp")
    assert params.loop == "pingpong"


def test_a_dict_as_first_arg_wins_and_a_short_list_keeps_defaults():
    params = params_from_args([{"enabled": True, "frames": "16", "lambda": 0.05}, 3, 4])
    assert (params.enabled, params.frames, params.lambda_.at(0)) == (True, 16, 0.05)
    assert params_from_args([True, 8]) == ZS2Params(enabled=True, frames=8)
    assert params_from_args([]) == ZS2Params()


def test_bad_args_name_the_field():
    with pytest.raises(ParamError, match="frames"):
        params_from_args([True, 0])
    with pytest.raises(ParamError, match="bogus"):
        params_from_args([{"enabled": True, "bogus": 1}])
    with pytest.raises(ParamError, match=f"at most {len(FIELD_NAMES)}"):
        params_from_args([True] * (len(FIELD_NAMES) + 1))


def test_wants_enabled_tells_whether_an_error_must_be_shown():
    assert wants_enabled([{"enabled": True, "frames": -1}])
    assert wants_enabled([True, -1])
    assert wants_enabled(["maybe"])  # cannot tell: show the error rather than ignore it
    assert not wants_enabled([False, -1])
    assert not wants_enabled([{"frames": -1}])
    assert not wants_enabled([])


def test_input_error_carries_an_http_status_for_the_api():
    error = InputError("ZS² Video: frames: 0 is out of range")
    assert (error.status_code, error.detail, str(error)) == (
        422,
        str(error),
        "ZS² Video: frames: 0 is out of range",
    )


def test_paste_restores_every_field_from_the_infotext():
    params = params_from_args(UI_VALUES)
    generation_params = {"Steps": "20", INFOTEXT_KEY: params.to_infotext()}
    restored = {spec.name: infotext_value(generation_params, spec.name) for spec in FIELDS}
    assert ZS2Params.from_dict(restored) == dataclasses.replace(params, enabled=True)
    assert infotext_value({"Steps": "20"}, "enabled") is False
    assert infotext_value({"Steps": "20"}, "frames") is None
    assert infotext_value({INFOTEXT_KEY: "frames=zero"}, "frames") is None
    with pytest.raises(InputError, match="frames"):  # invalid settings never turn ZS² on
        infotext_value({INFOTEXT_KEY: "frames=zero"}, "enabled")
