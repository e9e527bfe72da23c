"""The project's tiny ControlNet for the host tier: the tiny checkpoint's own encoder as the control copy.

A ControlNet is a trainable copy of its base UNet's encoder (``time_embed``, ``input_blocks``,
``middle_block``) plus a hint encoder (``input_hint_block``: 8 convs, image → model channels at
1/8 size) and 13 "zero" 1×1 convs whose outputs are added to the UNet's skip connections and
middle block. This builds one for the tiny checkpoint the way training starts, by copying the
encoder's weights, except that nothing is zero: the hint encoder gets He-normal weights (scaled
so its output has unit spread on a test pattern, else the hint would hardly matter) and the zero
convs random weights of spread ``gain / sqrt(channels)``, so a unit visibly changes the image and
two control images change it differently. Same checkpoint and seed, same file.

sd-webui-controlnet reads no config for ControlNet files; it builds every SD1 ControlNet with 320
model channels, so the server also gets ``tiny_controlnet_shim.py`` (see there). Run with the
webui's Python (torch and safetensors); :func:`install` sets up a server's data dir with it.
"""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path

HINT_CHANNELS = (16, 16, 32, 32, 96, 96, 256)
HINT_STRIDES = (1, 1, 2, 1, 2, 1, 2, 1)
UNET_PREFIX = "model.diffusion_model."
ENCODER = ("time_embed.", "input_blocks.", "middle_block.")


def _block_channels(encoder: dict) -> list[int]:
    """Output channels of each input block (the skip connections), read from the copied weights."""
    blocks = sorted({int(m.group(1)) for k in encoder if (m := re.match(r"input_blocks\.(\d+)\.", k))})
    channels = []
    for i in blocks:
        names = [
            f"input_blocks.{i}.0.weight",
            f"input_blocks.{i}.0.op.weight",
            f"input_blocks.{i}.0.out_layers.3.weight",
        ]
        channels.append(next(int(encoder[n].shape[0]) for n in names if n in encoder))
    return channels


def build(checkpoint: Path, out: Path, *, seed: int = 0, gain: float = 0.35) -> Path:
    """Write the tiny ControlNet for ``checkpoint`` to ``out``; returns ``out``."""
    import torch
    from safetensors.torch import load_file, save_file

    generator = torch.Generator().manual_seed(seed)
    weights = load_file(str(checkpoint))
    state = {
        key[len(UNET_PREFIX) :]: tensor.float().clone()
        for key, tensor in weights.items()
        if key.startswith(UNET_PREFIX) and key[len(UNET_PREFIX) :].startswith(ENCODER)
    }
    model_channels = int(state["input_blocks.0.0.weight"].shape[0])
    widths = (3, *HINT_CHANNELS, model_channels)
    convs = []
    for index, (c_in, c_out) in enumerate(itertools.pairwise(widths)):
        weight = torch.randn(c_out, c_in, 3, 3, generator=generator) * (2.0 / (9 * c_in)) ** 0.5
        convs.append((f"input_hint_block.{2 * index}", weight, torch.zeros(c_out)))

    # unit spread of the hint features on a checkerboard of 8-pixel squares at 64×64
    y, x = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    h = (((y // 8 + x // 8) % 2).float())[None, None].expand(1, 3, 64, 64)
    for index, (_, weight, bias) in enumerate(convs):
        h = torch.nn.functional.conv2d(h, weight, bias, stride=HINT_STRIDES[index], padding=1)
        if index < len(convs) - 1:
            h = torch.nn.functional.silu(h)
    convs[-1] = (convs[-1][0], convs[-1][1] / float(h.std()), convs[-1][2])
    for name, weight, bias in convs:
        state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias

    channels = _block_channels(state)
    middle = int(state["middle_block.2.out_layers.3.weight"].shape[0])
    outputs = [(f"zero_convs.{i}.0", c) for i, c in enumerate(channels)] + [("middle_block_out.0", middle)]
    for name, c in outputs:
        state[f"{name}.weight"] = torch.randn(c, c, 1, 1, generator=generator) * gain / c**0.5
        state[f"{name}.bias"] = torch.zeros(c)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(out),
        metadata={"zs2": f"tiny ControlNet seed {seed}"},
    )
    return out


def install(data_dir: Path, controlnet: Path, checkpoint: Path) -> None:
    """Into an A1111 data dir: ControlNet (symlink), the loader shim, ``tiny_cn`` for ``checkpoint``."""
    extensions = data_dir / "extensions"
    extensions.mkdir(parents=True, exist_ok=True)
    (extensions / "sd-webui-controlnet").symlink_to(controlnet, target_is_directory=True)
    shim = extensions / "zz-zs2-tiny-controlnet" / "scripts"
    shim.mkdir(parents=True)
    shutil.copyfile(Path(__file__).with_name("tiny_controlnet_shim.py"), shim / "tiny_controlnet_shim.py")
    build(checkpoint, data_dir / "models" / "ControlNet" / "tiny_cn.safetensors")
