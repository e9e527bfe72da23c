"""The API surface: every invalid value is answered 422 naming its field; script-info lists the args."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.webui.conftest import webui_python, webui_root
from tests.webui.webui_client import REPO_ROOT, max_abs_diff, txt2img_request, zs2_args
from zs2_lib.params import FIELD_BY_NAME, FIELDS

FIELD_NAMES = [spec.name for spec in FIELDS]


def _bad_values() -> list[tuple[str, Any]]:
    """``(field, invalid value)`` for every field of FIELDS, by kind, plus the named cases."""
    cases: list[tuple[str, Any]] = []
    for spec in FIELDS:
        if spec.kind == "bool":
            cases += [(spec.name, "maybe"), (spec.name, 2)]
        elif spec.kind == "int":
            cases += [(spec.name, int(spec.low) - 1), (spec.name, int(spec.high) + 1), (spec.name, "x")]
            cases += [(spec.name, 2.5), (spec.name, True)]
        elif spec.kind == "float":
            cases += [(spec.name, spec.low if spec.low_open else spec.low - 1), (spec.name, spec.high + 1)]
            cases += [(spec.name, "abc"), (spec.name, "nan")]
        elif spec.kind == "schedule":
            cases += [(spec.name, "abc"), (spec.name, spec.low - 1), (spec.name, spec.high + 1)]
            cases += [(spec.name, "0:0.1, 0:0.2"), (spec.name, "")]
            cases += [(spec.name, f"0:{spec.low}, 8:{spec.high + 1}")]
        elif spec.kind == "choice":
            cases += [(spec.name, "foo"), (spec.name, 3)]
        elif spec.kind == "formats":
            cases += [(spec.name, ["avi"]), (spec.name, []), (spec.name, 5), (spec.name, "mp4, mov")]
        elif spec.kind == "source":
            cases += [(spec.name, 3), (spec.name, ["clip.mp4"])]
        elif spec.kind == "control":
            cases += [(spec.name, 42), (spec.name, ["frame", ""]), (spec.name, {"a": 1})]
        elif spec.kind == "controls":
            cases += [(spec.name, 42), (spec.name, "not json"), (spec.name, [["frame", 3]])]
        else:
            raise AssertionError(f"no invalid values for kind {spec.kind!r} of {spec.name}")
    named = [
        ("frames", 0),
        ("frames", 5000),
        ("frames", "x"),
        ("fps", 0),
        ("lambda", "abc"),
        ("lambda", -1),
        ("mu", 2),
        ("noise_model", "foo"),
        ("alpha", 1.5),
        ("search", 0),
        ("solver", "x"),
        ("debias", "maybe"),
        ("formats", ["avi"]),
        ("loop", "twice"),
    ]
    for case in named:
        if case not in cases:
            cases.append(case)
    assert {name for name, _ in cases} == set(FIELD_NAMES)
    return cases


BAD_VALUES = _bad_values()


def test_every_bad_value_is_rejected_with_its_name(zs2_server, measure):
    failures = []
    for name, value in BAD_VALUES:
        args = {"enabled": True, "frames": 4, name: value}
        result = zs2_server.txt2img(txt2img_request(args))
        called = FIELD_BY_NAME[name].called if name in FIELD_BY_NAME else name  # "Frames (frames)"
        if result.status != 422 or not result.detail.startswith(f"ZS² Video: {called}: "):
            failures.append(f"{name}={value!r}: {result.describe()}")
    passed = len(BAD_VALUES) - len(failures)
    measure(f"bad values: {len(BAD_VALUES)} sent, {passed} answered 422 naming the field")
    assert not failures, "\n".join(failures)


def test_a_control_video_without_controlnet_is_refused_before_sampling(zs2_server):
    frame = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    result = zs2_server.txt2img(txt2img_request({"enabled": True, "frames": 4, "control_video": [frame] * 4}))
    assert result.status == 422, result.describe()
    assert result.detail.startswith("ZS² Video: Control video (control_video): the ControlNet extension"), (
        result.detail
    )


def test_unknown_name_is_rejected(zs2_server):
    result = zs2_server.txt2img(txt2img_request({"enabled": True, "frames": 4, "bogus": 1}))
    assert result.status == 422, result.describe()
    assert result.detail.startswith("ZS² Video: "), result.detail
    assert '"bogus"' in result.detail


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ([True, 0], "frames"),
        ([True, 8, 0], "fps"),
        ([True, 8, 8, "abc"], "lambda"),
        ([True, 8, 8, 0.01, 2], "mu"),
        ([True, 8, 8, 0.01, 0.98, "foo"], "noise_model"),
        ([True, 8, 8, 0.01, 0.98, "dependency", 0.9, 10, "exact", True, ["avi"]], "formats"),
        (["maybe"], "enabled"),
    ],
)
def test_positional_bad_value_is_rejected(zs2_server, args, name):
    result = zs2_server.txt2img(txt2img_request(list(args)))
    assert result.status == 422, result.describe()
    assert result.detail.startswith(f"ZS² Video: {FIELD_BY_NAME[name].called}: "), result.detail


def test_positional_form_matches_dict_form(zs2_server):
    values = {**zs2_args(), "frames": 4}
    positional = [values.get(spec.name, spec.default) for spec in FIELDS]
    positional[FIELD_NAMES.index("formats")] = ["gif"]
    by_dict = zs2_server.ok(txt2img_request({**values, "formats": ["gif"]}, seed=99))
    by_list = zs2_server.ok(txt2img_request(positional, seed=99))
    assert len(by_list.frames) == 4
    assert max_abs_diff(by_dict.frames, by_list.frames) == 0
    assert [v["format"] for v in by_list.info["zs2_videos"]] == ["gif"]


def test_a_valid_request_works_after_rejections(zs2_server):
    rejected = zs2_server.txt2img(txt2img_request({"enabled": True, "frames": 0}))
    assert rejected.status == 422
    result = zs2_server.ok(txt2img_request({"enabled": True, "frames": 3}))
    assert len(result.frames) == 3


def test_script_info_lists_the_script_and_its_args(zs2_server):
    status, scripts = zs2_server.get("/sdapi/v1/script-info")
    assert status == 200, scripts
    entries = [s for s in scripts if s["name"] == "zs2 video"]
    assert sorted(entry["is_img2img"] for entry in entries) == [False, True], [s["name"] for s in scripts]
    for entry in entries:  # txt2img and img2img: the same args
        assert entry["is_alwayson"] is True
        args = entry["args"]
        assert len(args) == len(FIELDS)
        labels = [arg["label"] for arg in args]
        assert labels[1:] == [spec.label for spec in FIELDS[1:]], labels
        for spec, arg in zip(FIELDS, args, strict=True):
            expected = list(spec.default) if spec.kind == "formats" else spec.default
            if spec.kind == "schedule":
                expected = str(spec.default)
            if spec.kind in ("control", "controls"):
                expected = ""  # an empty text box: no control video
            assert arg["value"] == expected, (spec.name, arg)
            if spec.kind in ("choice", "formats"):
                offered = ["opencv"] if spec.name == "interpolator" else list(spec.choices)  # no RIFE weights
                assert arg["choices"] == offered, (spec.name, arg)
    status, listed = zs2_server.get("/sdapi/v1/scripts")
    assert status == 200
    assert "zs2 video" in listed["txt2img"]
    assert "zs2 video" in listed["img2img"]


BUILD_ACCORDION = """
import json, sys
from types import SimpleNamespace
import gradio as gr
from zs2_lib.webui import ui
found = {}
for tab in ("txt2img", "img2img"):
    script = SimpleNamespace(is_img2img=tab == "img2img", elem_id=lambda item, tab=tab: f"{tab}_{item}")
    with gr.Blocks() as blocks:
        args = ui.build(script)
    config = blocks.get_config_file()
    elem = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
    found[tab] = {
        "args": [elem[a._id] for a in args],
        "files": {elem[c["id"]]: c["props"]["file_types"] for c in config["components"]
                  if c["type"] == "file"},
        "uploads": [
            [elem[i] for i in d["targets"] + d["inputs"] + d["outputs"]]
            for d in config["dependencies"] if d["trigger"] == "upload"
        ],
    }
print(json.dumps(found))
"""


def test_both_tabs_have_a_control_video_upload_that_fills_the_path_box_and_is_no_script_arg():
    """The servers run without a UI (--nowebui): the accordion is built with the host's gradio here."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [webui_python(), "-c", BUILD_ACCORDION]
    done = subprocess.run(command, cwd=webui_root(), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for tab in ("txt2img", "img2img"):
        built = found[tab]
        names = [f"{tab}_{spec.name}" for spec in FIELDS]  # the positional args as before
        assert built["args"] == [f"{names[0]}-checkbox", *names[1:]]  # InputAccordion's checkbox
        assert ".mp4" in built["files"][f"{tab}_control_upload"]
        assert [f"{tab}_control_upload", f"{tab}_control_upload", f"{tab}_control_video"] in built["uploads"]
        assert [f"{tab}_upload", f"{tab}_upload", f"{tab}_video"] in built["uploads"]
