#!/usr/bin/env python3
"""Build the tiny random SD1.x checkpoint that the host-tier tests load into A1111 v1.10.1.

Under ``--out`` (an A1111 ``models`` folder) it writes:

* ``Stable-diffusion/tiny.safetensors``: all weights of an ldm ``LatentDiffusion`` (UNet, VAE,
  CLIP text encoder, noise schedule buffers), fp32, random;
* ``Stable-diffusion/tiny.yaml``: the model config (A1111 uses a same-named ``.yaml`` beside a
  checkpoint as its config);
* ``tiny-clip/``: the text encoder's ``config.json`` and CLIP's real BPE tokenizer files. The yaml
  names this folder by absolute path, so rebuild after moving ``--out``.

The layout is SD1.x's (``--layout sd1``: same blocks and state-dict keys as ``v1-inference.yaml``)
with narrow channels, so a 64x64 image takes a fraction of a second on one CPU thread. Prompts
tokenize to the same ids as on a real SD1.x model. ldm zero-initialises the UNet's output
projections, which would make attention (and so prompts and ZS²'s momentum) irrelevant; they are
drawn at random here, and the UNet and VAE outputs are rescaled to realistic ranges.

``--layout inpaint`` writes ``tiny_inpaint.*``: an inpainting model as A1111's
``v1-inpainting-inference.yaml`` (``LatentInpaintDiffusion``, hybrid conditioning, a 9-channel UNet
input: latent, mask and encoded masked image), its VAE encoder calibrated as for ip2p.

``--layout ip2p`` writes ``tiny_ip2p.*`` and ``tiny_ip2p-clip/`` instead: an InstructPix2Pix model
(A1111's ``ddpm_edit`` class, ``cond_stage_key: edit``, hybrid conditioning, an 8-channel UNet input:
latent and encoded init image) whose VAE encoder is calibrated so that init images matter (latents
of unit std, posterior std 0.02).

Nothing is downloaded. Run it with the webui's python (torch, safetensors, omegaconf,
transformers, the openai ``clip`` package and ldm, which ``--webui`` takes from the webui's
``repositories/``); the same seed gives the same bytes::

    python tests/webui/make_tiny_checkpoint.py --out WEBUI/models --webui WEBUI
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch

NAME = "tiny"
CONTEXT_DIM = 32  # CLIP hidden size = UNet cross-attention context
VOCAB_SIZE = 49408
MAX_TOKENS = 77
START_TOKEN, END_TOKEN = "<|startoftext|>", "<|endoftext|>"
CHECK_PROMPTS = ("a photo of a cat, best quality", "A red fox running through fresh snow, cinematic!")


@dataclass(frozen=True)
class Layout:
    """The UNet's shape; everything else is the same for all layouts."""

    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    model_channels: int = 32
    num_heads: int = 2
    context_dim: int = CONTEXT_DIM
    edit: bool = False  # InstructPix2Pix: 8 input channels (latent + encoded init image), A1111's edit model
    inpaint: bool = False  # inpainting: 9 input channels (latent, mask, encoded masked image)

    @property
    def name(self) -> str:
        return f"{NAME}_ip2p" if self.edit else f"{NAME}_inpaint" if self.inpaint else NAME

    @property
    def in_channels(self) -> int:
        return 8 if self.edit else 9 if self.inpaint else 4


LAYOUTS = {
    "sd1": Layout(channel_mult=(1, 2, 4, 4), num_res_blocks=2, attention_resolutions=(4, 2, 1)),
    "mini": Layout(channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2, 1)),
    "ip2p": Layout(channel_mult=(1, 2, 4, 4), num_res_blocks=2, attention_resolutions=(4, 2, 1), edit=True),
    "inpaint": Layout(
        channel_mult=(1, 2, 4, 4), num_res_blocks=2, attention_resolutions=(4, 2, 1), inpaint=True
    ),
    # SD 1.5's real UNet (860 M parameters, v1-inference.yaml) for benchmarks; a narrow text encoder.
    "sd15": Layout(
        channel_mult=(1, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(4, 2, 1),
        model_channels=320,
        num_heads=8,
        context_dim=768,
    ),
}
EDIT_TARGET = "modules.models.diffusion.ddpm_edit.LatentDiffusion"
INPAINT_TARGET = "ldm.models.diffusion.ddpm.LatentInpaintDiffusion"
"""As A1111's configs/v1-inpainting-inference.yaml (the config it picks for a 9-channel SD1 UNet)."""
"""A1111's InstructPix2Pix class; it has ldm LatentDiffusion's state-dict keys, so ldm builds the weights."""
POSTERIOR_STD = 0.02


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, required=True, metavar="MODELS_DIR", help="A1111 models folder to write into"
    )
    parser.add_argument(
        "--webui",
        type=Path,
        metavar="WEBUI_ROOT",
        help="A1111 root, for its ldm (default: the installed ldm)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random weights (default 0)")
    parser.add_argument(
        "--name", help="checkpoint file name without suffix (default: tiny, tiny_ip2p, tiny_inpaint)"
    )
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="sd1", help="UNet layout (default sd1)")
    return parser.parse_args(argv)


# text encoder and tokenizer --------------------------------------------------------------------


def clip_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's vocabulary and BPE merges (in rank order), from the installed openai ``clip`` package."""
    from clip.simple_tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer()
    merges = sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.__getitem__)
    return dict(tokenizer.encoder), merges


def text_encoder_config(hidden: int = CONTEXT_DIM) -> dict[str, Any]:
    """A 2-layer CLIP text model with CLIP-L's vocabulary and context length."""
    return {
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "vocab_size": VOCAB_SIZE,
        "max_position_embeddings": MAX_TOKENS,
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "projection_dim": hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "initializer_factor": 1.0,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "bos_token_id": VOCAB_SIZE - 2,
        "eos_token_id": VOCAB_SIZE - 1,
        "pad_token_id": VOCAB_SIZE - 1,
        "torch_dtype": "float32",
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def write_clip_folder(folder: Path, hidden: int = CONTEXT_DIM) -> None:
    """Everything ``CLIPTokenizer.from_pretrained`` and A1111's config-only text model load read."""
    vocab, merges = clip_bpe()
    if len(vocab) != VOCAB_SIZE or vocab[END_TOKEN] != VOCAB_SIZE - 1:
        raise SystemExit(f"unexpected CLIP vocabulary: {len(vocab)} tokens")
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "vocab.json", vocab)
    lines = ["#version: 0.2", *(f"{left} {right}" for left, right in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {
        "bos_token": START_TOKEN,
        "eos_token": END_TOKEN,
        "unk_token": END_TOKEN,
        "pad_token": END_TOKEN,
    }
    write_json(folder / "special_tokens_map.json", special)
    tokenizer = {**special, "tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_TOKENS}
    write_json(folder / "tokenizer_config.json", {**tokenizer, "do_lower_case": True, "errors": "replace"})
    write_json(folder / "config.json", text_encoder_config(hidden))


def check_tokenizer(folder: Path) -> list[int]:
    """Fail unless the written tokenizer gives CLIP's own token ids; returns the first prompt's ids."""
    from clip.simple_tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    ours, reference = CLIPTokenizer.from_pretrained(str(folder)), SimpleTokenizer()
    start, end = reference.encoder[START_TOKEN], reference.encoder[END_TOKEN]
    for prompt in CHECK_PROMPTS:
        expected = [start, *reference.encode(prompt), end]
        if ours(prompt)["input_ids"] != expected:
            raise SystemExit(f"tokenizer mismatch for {prompt!r}: {ours(prompt)['input_ids']} != {expected}")
    return ours(CHECK_PROMPTS[0])["input_ids"]


# model -----------------------------------------------------------------------------------------


def model_config(layout: Layout, clip_folder: Path) -> dict[str, Any]:
    """The ldm config of an SD1.x-shaped ``LatentDiffusion`` (as v1-inference.yaml, narrow)."""
    unet = {
        "image_size": 32,
        "in_channels": layout.in_channels,
        "out_channels": 4,
        "model_channels": layout.model_channels,
        "attention_resolutions": list(layout.attention_resolutions),
        "num_res_blocks": layout.num_res_blocks,
        "channel_mult": list(layout.channel_mult),
        "num_heads": layout.num_heads,
        "use_spatial_transformer": True,
        "transformer_depth": 1,
        "context_dim": layout.context_dim,
        "use_checkpoint": False,
        "legacy": False,
    }
    vae = {
        "embed_dim": 4,
        "monitor": "val/rec_loss",
        "ddconfig": {
            "double_z": True,
            "z_channels": 4,
            "resolution": 256,
            "in_channels": 3,
            "out_ch": 3,
            "ch": 32,  # ldm's GroupNorm has 32 groups
            "ch_mult": [1, 1, 1, 1],  # four levels: the latent is 1/8 of the image, as in SD1.x
            "num_res_blocks": 1,
            "attn_resolutions": [],
            "dropout": 0.0,
        },
        "lossconfig": {"target": "torch.nn.Identity"},
    }
    params = {
        "linear_start": 0.00085,
        "linear_end": 0.012,
        "num_timesteps_cond": 1,
        "log_every_t": 200,
        "timesteps": 1000,
        "first_stage_key": "jpg",
        "cond_stage_key": "txt",
        "image_size": 64,
        "channels": 4,
        "cond_stage_trainable": False,
        "conditioning_key": "crossattn",
        "monitor": "val/loss_simple_ema",
        "scale_factor": 0.18215,
        "use_ema": False,
        "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": unet},
        "first_stage_config": {"target": "ldm.models.autoencoder.AutoencoderKL", "params": vae},
        "cond_stage_config": {
            "target": "ldm.modules.encoders.modules.FrozenCLIPEmbedder",
            "params": {"version": str(clip_folder)},
        },
    }
    target = "ldm.models.diffusion.ddpm.LatentDiffusion"
    if layout.edit:  # as A1111's configs/instruct-pix2pix.yaml
        params.update(first_stage_key="edited", cond_stage_key="edit", conditioning_key="hybrid")
        target = EDIT_TARGET
    if layout.inpaint:  # as A1111's configs/v1-inpainting-inference.yaml
        params.update(conditioning_key="hybrid", finetune_keys=None)
        target = INPAINT_TARGET
    return {
        "model": {
            "base_learning_rate": 1.0e-4,
            "target": target,
            "params": params,
        }
    }


def use_ldm_from(webui: Path | None) -> None:
    """Make ``import ldm`` find the webui's copy of Stability-AI's stablediffusion repository."""
    if webui is None:
        return
    repository = webui.resolve() / "repositories" / "stable-diffusion-stability-ai"
    if not (repository / "ldm").is_dir():
        raise SystemExit(f"{repository} has no ldm package: is --webui an A1111 root?")
    sys.path.insert(0, str(repository))


def instantiate(yaml_path: Path) -> torch.nn.Module:
    """Build the model from the yaml; the text model comes from its config alone, as A1111 does."""
    from ldm.util import instantiate_from_config
    from omegaconf import OmegaConf
    from transformers import CLIPTextConfig, CLIPTextModel

    def config_only(folder: str, *args: Any, **kwargs: Any) -> CLIPTextModel:
        return CLIPTextModel(CLIPTextConfig.from_pretrained(folder))

    config = OmegaConf.load(yaml_path).model
    if config.target == EDIT_TARGET:  # A1111's module needs a running webui; ldm's has the same weights
        config.target = "ldm.models.diffusion.ddpm.LatentDiffusion"
    with mock.patch.object(CLIPTextModel, "from_pretrained", side_effect=config_only):
        model = instantiate_from_config(config)
    model.cond_stage_model.device = "cpu"  # FrozenCLIPEmbedder defaults to cuda
    return model.eval()


def randomise_zeroed_layers(model: torch.nn.Module, generator: torch.Generator) -> int:
    """Redraw every all-zero conv/linear weight (ldm's ``zero_module``) with std 1/sqrt(fan-in)."""
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear) and not module.weight.any():
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * fan_in**-0.5)
            count += 1
    return count


def rescale(layer: torch.nn.Module, factor: float) -> None:
    layer.weight.mul_(factor)
    if layer.bias is not None:
        layer.bias.mul_(factor)


def calibrate(model: torch.nn.Module, generator: torch.Generator) -> dict[str, float]:
    """Scale the UNet's eps to unit std and decoded images to std 0.5; return what was measured."""
    cond = model.get_learned_conditioning([CHECK_PROMPTS[0], ""])
    channels = model.model.diffusion_model.input_blocks[0][0].in_channels
    hybrid = channels > 4  # the encoded init image (and the mask, for inpainting) is concatenated to x
    if hybrid:
        concat = torch.randn(2, channels - 4, 8, 8, generator=generator)
        cond = {"c_crossattn": [cond], "c_concat": [concat]}
    other = model.get_learned_conditioning([CHECK_PROMPTS[1], ""])
    if hybrid:
        other = {**cond, "c_crossattn": [other]}
    x = torch.randn(2, 4, 8, 8, generator=generator)
    t = torch.tensor([999, 500])
    unet_out = model.model.diffusion_model.out[-1]
    eps_std = float(model.apply_model(x, t, cond).std())
    rescale(unet_out, 1.0 / eps_std)
    eps = model.apply_model(x, t, cond)
    prompt_effect = float((eps - model.apply_model(x, t, other)).abs().mean())

    z = torch.randn(2, 4, 8, 8, generator=generator)
    image_std = float(model.decode_first_stage(z).std())
    rescale(model.first_stage_model.decoder.conv_out, 0.5 / image_std)
    image = model.decode_first_stage(z)
    stats = {}
    if hybrid:
        stats = calibrate_encoder(model, image)
    return {
        **stats,
        "eps std (raw)": eps_std,
        "eps std": float(eps.std()),
        "prompt effect on eps": prompt_effect,
        "image std (raw)": image_std,
        "image std": float(image.std()),
        "image in [-1, 1]": float((image.abs() <= 1).float().mean()),
    }


def calibrate_encoder(model: torch.nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Make encoded images matter: posterior mean std 1/scale_factor (unit-std latents), std POSTERIOR_STD.

    The encoder's last layer, ``quant_conv``, outputs the posterior's mean and log-variance; the mean
    half is rescaled and the log-variance half made constant.
    """
    quant = model.first_stage_model.quant_conv
    mean_std = float(model.encode_first_stage(images).mean.std())
    quant.weight[:4].mul_(1.0 / (model.scale_factor * mean_std))
    quant.bias[:4].mul_(1.0 / (model.scale_factor * mean_std))
    quant.weight[4:].zero_()
    quant.bias[4:].fill_(2 * math.log(POSTERIOR_STD))
    posterior = model.encode_first_stage(images)
    return {
        "latent std (raw)": mean_std * model.scale_factor,
        "latent std": float(posterior.mean.std() * model.scale_factor),
    }


def save_checkpoint(model: torch.nn.Module, path: Path, description: str) -> int:
    """Write the state dict (floats as fp32) as safetensors; returns the number of values."""
    from safetensors.torch import save_file

    state = {
        key: (value.float() if value.is_floating_point() else value).detach().contiguous().clone()
        for key, value in model.state_dict().items()
    }
    # One metadata entry only: safetensors writes several in a random order, which breaks same-seed equality.
    save_file(state, str(path), metadata={"zs2_fixture": description})
    return sum(value.numel() for value in state.values())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    use_ldm_from(args.webui)
    models = args.out.resolve()
    layout = LAYOUTS[args.layout]
    name = args.name or layout.name
    clip_folder = models / f"{name}-clip"
    checkpoints = models / "Stable-diffusion"
    checkpoints.mkdir(parents=True, exist_ok=True)

    write_clip_folder(clip_folder, layout.context_dim)
    token_ids = check_tokenizer(clip_folder)
    yaml_path = checkpoints / f"{name}.yaml"
    from omegaconf import OmegaConf

    OmegaConf.save(OmegaConf.create(model_config(layout, clip_folder)), yaml_path)

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        model = instantiate(yaml_path)
        redrawn = randomise_zeroed_layers(model, generator)
        stats = calibrate(model, generator)
    checkpoint = checkpoints / f"{name}.safetensors"
    parameters = save_checkpoint(
        model, checkpoint, f"tiny random SD1.x, layout {args.layout}, seed {args.seed}"
    )

    print(f"token ids of {CHECK_PROMPTS[0]!r}: {token_ids}")
    print(f"redrew {redrawn} zero-initialised layers; " + ", ".join(f"{k} {v:.3g}" for k, v in stats.items()))
    print(f"wrote {checkpoint} ({parameters / 1e6:.2f} M values, {checkpoint.stat().st_size / 1e6:.1f} MB)")
    print(f"wrote {yaml_path}")
    print(f"wrote {clip_folder}/ ({', '.join(sorted(p.name for p in clip_folder.iterdir()))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
