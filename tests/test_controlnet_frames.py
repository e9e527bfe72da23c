"""The ControlNet feature on a fake ControlNet: which units it drives, the hint rows of every UNet call, undo.

A stand-in for sd-webui-controlnet's ``external_code`` module, its script (units in ``p.script_args``,
``latest_network.control_params`` with the ``hint_cond`` setter that drops the cached hint,
``enabled_units``) and its ``get_control`` (here: the control frame's first pixel as the hint's value,
so every hint row says which frame it came from). The host's real behaviour is checked in
``tests/webui/test_webui_controlnet.py``.
"""

from __future__ import annotations

import base64
import io
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ZS2Params
from zs2_lib.webui.features.controlnet import ControlNetFrames
from zs2_lib.webui.features.img2img import Img2ImgFrames, InitFrames
from zs2_lib.webui.features.refusal import RefusingRNG
from zs2_lib.webui.run import Run

FRAMES = 8


def png64(value: int) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class ControlNetUnit(SimpleNamespace):
    """Only the fields the feature reads or sets."""

    def __init__(self, **values: Any) -> None:
        fields = {
            "enabled": True,
            "module": "none",
            "image": None,
            "input_mode": "simple",
            "batch_images": "",
        }
        super().__init__(**{**fields, **values})


class ControlParams:
    def __init__(self, hint: torch.Tensor) -> None:
        self._hint_cond = hint
        self.hr_hint_cond = None
        self.used_hint_cond = hint
        self.control_model_type = "ControlNet"

    @property
    def hint_cond(self) -> torch.Tensor:
        return self._hint_cond

    @hint_cond.setter
    def hint_cond(self, value: torch.Tensor) -> None:
        self._hint_cond = value
        self.used_hint_cond = None


def get_control(p: Any, unit: Any, idx: int, control_model_type: Any, preprocessor: Any) -> tuple:
    """ControlNet's ``get_control`` for one image: here a [1, 3, 2, 2] hint holding the image's value."""
    value = float(np.asarray(unit.image)[0, 0, 0])
    return [torch.full((1, 3, 2, 2), value)], [None], []


class Preprocessor:
    @staticmethod
    def get_preprocessor(name: str) -> str:
        return name


class ControlNetScript:
    """The ControlNet script as the feature sees it: its args' span, units, and ``latest_network``."""

    def __init__(self, args_from: int, args_to: int) -> None:
        self.args_from, self.args_to = args_from, args_to
        self.latest_network: Any = None
        self.enabled_units: list[Any] = []

    def controlnet_main_entry(self, p: Any) -> None:
        """What ControlNet's ``process`` does: a single-image hint per enabled unit (the first frame)."""
        units = [u for u in p.script_args_value[self.args_from : self.args_to] if u.enabled]
        self.enabled_units = units
        hints = [
            get_control(p, u, i, None, None)[0][0] if u.image is not None else None
            for i, u in enumerate(units)
        ]
        self.latest_network = SimpleNamespace(control_params=[ControlParams(h) for h in hints])


@pytest.fixture
def controlnet(monkeypatch: pytest.MonkeyPatch):
    script = ControlNetScript(1, 4)
    module = SimpleNamespace(
        find_cn_script=lambda runner: script if runner is not None else None,
        to_processing_unit=lambda unit: unit,
        ControlNetUnit=ControlNetUnit,
        resize_mode_from_value=lambda value: f"A1111 resize mode {value}",
    )
    monkeypatch.setitem(sys.modules, "internal_controlnet.external_code", module)
    return script


class SourceFrames(Img2ImgFrames):
    """img2img's source frames without the VAE (this test looks at the control hints only)."""

    def install(self, run: Run) -> None:
        pass

    def batch(self, run: Run) -> None:
        pass


class Recorder(torch.nn.Module):
    """A UNet that records, per call, the value (= frame) of every hint row of every unit."""

    def __init__(self, params: list[ControlParams]) -> None:
        super().__init__()
        self.params = params
        self.calls: list[list[list[float]]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for param in self.params:
            assert param.used_hint_cond is None  # the setter ran: ControlNet rebuilds its hint from ours
        self.calls.append([param.hint_cond[:, 0, 0, 0].tolist() for param in self.params])
        return x


def start(
    controlnet: ControlNetScript, units: list[ControlNetUnit], source: Any = None, **values: Any
) -> tuple[Run, Any]:
    params = ZS2Params(enabled=True, frames=FRAMES, **values)
    p = SimpleNamespace(
        resize_mode=1,
        scripts=object(),
        script_args_value=("other script", *units),
        extra_generation_params={},
        rng=SimpleNamespace(next=lambda: torch.zeros(1)),
        close=lambda: None,
    )
    host = SimpleNamespace(unet=None, is_edit_model=lambda: False)
    features = [ControlNetFrames()] if source is None else [SourceFrames(source), ControlNetFrames()]
    run = Run(p, host, features, params=params, plan=ChunkPlan(params.frames, params.chunk))
    run.start()
    controlnet.controlnet_main_entry(p)
    return run, p


def evaluate(run: Run, unet: Recorder, repeats: list[int], calls: list[int]) -> list[list[list[float]]]:
    """One CFG evaluation: ``repeats`` cond rows per frame, then uncond rows, in calls of ``calls`` rows."""
    frames = len(repeats)
    x = torch.zeros(sum(repeats) + frames, 4, 2, 2)
    cond = SimpleNamespace(batch=[[None] * n for n in repeats])
    denoiser = SimpleNamespace(
        sampler=SimpleNamespace(sampler_extra_args={"cond": cond}), image_cfg_scale=None
    )
    run.host.unet = lambda: unet
    run.emit("evaluation", SimpleNamespace(denoiser=denoiser, x=x, text_cond=None))
    unet.calls.clear()
    start_row = 0
    for rows in calls:
        unet(x[start_row : start_row + rows])
        start_row += rows
    run.emit("evaluated")
    return list(unet.calls)


VIDEO = [png64(10 * i) for i in range(FRAMES)]
OTHER = [png64(200 + i) for i in range(FRAMES)]


@pytest.mark.parametrize(
    ("repeats", "calls", "frames"),
    [
        ([1] * 4, [8], [[0, 1, 2, 3, 0, 1, 2, 3]]),  # batch cond/uncond: one call of 2N rows
        ([1] * 4, [4, 4], [[0, 1, 2, 3], [0, 1, 2, 3]]),  # cond and uncond separately
        ([1] * 4, [4], [[0, 1, 2, 3]]),  # uncond skipped (s_min_uncond, skip_early_cond)
        ([2, 1, 2, 1], [10], [[0, 0, 1, 2, 2, 3, 0, 1, 2, 3]]),  # AND sub-prompts
        ([1] * 4, [3, 3, 2], [[0, 1, 2], [3, 0, 1], [2, 3]]),  # slices across cond and uncond
    ],
    ids=["batched", "cond then uncond", "uncond skipped", "AND prompts", "uneven slices"],
)
def test_every_unet_call_gets_the_hint_rows_of_its_latent_rows(controlnet, repeats, calls, frames):
    units = [ControlNetUnit(), ControlNetUnit(enabled=False), ControlNetUnit(image=np.zeros((2, 2, 3)))]
    run, p = start(controlnet, units, chunk=4, control_videos=[None, None, OTHER], control_video=VIDEO)
    assert run.feature(ControlNetFrames).error is None
    assert p.extra_generation_params["ZS2 control"] == "unit 0: 8 base64 frames; unit 2: 8 base64 frames"
    for chunk in range(2):
        run.begin_batch(chunk)
        unet = Recorder(controlnet.latest_network.control_params)
        got = evaluate(run, unet, repeats, calls)
        first = 4 * chunk
        assert got == [
            [[10.0 * (first + f) for f in call], [200.0 + first + f for f in call]] for call in frames
        ]
    run.finish()


def test_undo_puts_controlnet_back_and_removes_the_hook(controlnet):
    units = [ControlNetUnit(input_mode="batch", batch_images="")]
    run, p = start(controlnet, units, control_video=VIDEO)
    args = p.script_args_value
    assert args[1] is not units[0]  # a first-frame copy for ControlNet; the request's unit is untouched
    assert units[0].image is None
    run.begin_batch(0)
    param = controlnet.latest_network.control_params[0]
    original = param.hint_cond
    unet = Recorder([param])
    evaluate(run, unet, [1] * FRAMES, [2 * FRAMES])
    assert param.hint_cond is not original
    run.finish()
    assert param.hint_cond is original
    assert p.script_args_value == ("other script", *units)
    unet(torch.zeros(1))
    assert not unet._forward_pre_hooks


@pytest.mark.parametrize(
    ("units", "values", "field"),
    [
        ([ControlNetUnit()], {"control_video": VIDEO[:5]}, "control_video"),
        ([ControlNetUnit()], {"control_videos": [VIDEO, VIDEO]}, "control_videos"),
        ([ControlNetUnit(enabled=False)], {"control_videos": [VIDEO]}, "control_videos[0]"),
        ([ControlNetUnit(image=np.zeros((2, 2, 3)))], {"control_video": VIDEO}, "control_video"),
    ],
    ids=["too short", "too many entries", "disabled unit", "no unit without an image"],
)
def test_problems_refuse_the_first_noise_draw_naming_the_field(controlnet, units, values, field):
    run, p = start(controlnet, units, **values)
    run.begin_batch(0)
    assert isinstance(p.rng, RefusingRNG)
    with pytest.raises(Exception, match=field.replace("[", r"\[")) as error:
        p.rng.next()
    assert error.value.status_code == 422
    run.finish()


def test_a_held_last_frame_fills_a_short_video(controlnet):
    run, _ = start(controlnet, [ControlNetUnit()], control_video=VIDEO[:5], hold_last=True)
    run.begin_batch(0)
    unet = Recorder(controlnet.latest_network.control_params)
    assert evaluate(run, unet, [1] * FRAMES, [FRAMES]) == [[[0.0, 10.0, 20.0, 30.0, 40.0, 40.0, 40.0, 40.0]]]
    run.finish()


def test_without_controlnet_a_control_video_is_refused_and_nothing_else_changes(monkeypatch):
    for name in ("internal_controlnet.external_code", "scripts.external_code"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    params = ZS2Params(enabled=True, frames=FRAMES, control_video=VIDEO)
    p = SimpleNamespace(
        scripts=object(), script_args_value=(), extra_generation_params={}, rng=object(), close=lambda: None
    )
    run = Run(p, SimpleNamespace(), [ControlNetFrames()], params=params, plan=ChunkPlan(FRAMES, FRAMES))
    run.start()
    run.begin_batch(0)
    with pytest.raises(Exception, match="ControlNet extension") as error:
        p.rng.next()
    assert error.value.status_code == 422
    run.finish()
    assert p.extra_generation_params == {}


SOURCE = [np.full((8, 8, 3), 5 * i + 1, dtype=np.uint8) for i in range(FRAMES)]


def test_in_img2img_units_without_input_take_the_source_frame_by_frame(controlnet):
    own = np.full((2, 2, 3), 99, dtype=np.uint8)
    units = [ControlNetUnit(), ControlNetUnit(image=own), ControlNetUnit(resize_mode="Crop and Resize")]
    run, p = start(controlnet, units, source=InitFrames(SOURCE), chunk=4)
    assert run.feature(ControlNetFrames).error is None
    source = "img2img source init images (8 frames)"
    assert p.extra_generation_params["ZS2 control"] == f"unit 0: {source}; unit 2: {source}"
    handed = p.script_args_value
    assert handed[2] is units[1]  # a unit with its own image keeps it
    for k in (1, 3):  # ControlNet's img2img resize mode, as it uses for a single init image
        assert np.array_equal(handed[k].image, SOURCE[0])
        assert handed[k].resize_mode == "A1111 resize mode 1"
    assert units[2].resize_mode == "Crop and Resize"  # the request's unit is untouched
    params = controlnet.latest_network.control_params
    for chunk in range(2):
        run.begin_batch(chunk)
        unet = Recorder([params[0], params[2]])
        first = 4 * chunk
        expected = [5.0 * (first + f) + 1 for f in range(4)] * 2
        assert evaluate(run, unet, [1] * 4, [8]) == [[expected, expected]]
    assert params[1].hint_cond[0, 0, 0, 0] == 99
    run.finish()


def test_a_control_video_wins_over_the_source_and_a_still_init_image_drives_nothing(controlnet):
    run, p = start(controlnet, [ControlNetUnit()], source=InitFrames(SOURCE), control_video=VIDEO)
    assert p.extra_generation_params["ZS2 control"] == "unit 0: 8 base64 frames"
    run.finish()
    still = InitFrames(SOURCE[:1] * FRAMES, still=True)
    run, p = start(controlnet, [ControlNetUnit()], source=still)
    assert run.feature(ControlNetFrames).units == []
    assert "ZS2 control" not in p.extra_generation_params
    assert p.script_args_value[1].image is None  # ControlNet uses the init image itself, as without ZS²
    run.finish()
