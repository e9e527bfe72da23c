#!/usr/bin/env python3
"""Build the tiny random SDXL-base checkpoint that the SDXL host-tier tests load into A1111 v1.10.1.

Under ``--out`` (an A1111 ``models`` folder) it writes:

* ``Stable-diffusion/tiny_sdxl.safetensors``: all weights of an sgm ``DiffusionEngine`` (UNet, VAE,
  both text encoders, the denoiser's sigmas), fp32, random, with SDXL base's state-dict keys, so
  A1111 treats it as SDXL (``conditioner.embedders.1.model.ln_final.weight``) and not as SSD-1B
  (its middle block keeps a transformer);
* ``Stable-diffusion/tiny_sdxl.yaml``: the sgm config (as ``sd_xl_base.yaml``, narrow);
* ``tiny_sdxl-clip/``: the CLIP-L text model's config and CLIP's BPE tokenizer (from
  ``make_tiny_checkpoint.py``); the yaml names it by absolute path, so rebuild after moving;
* ``VAE-approx/vaeapprox-sdxl.pt``: random weights for A1111's "Approx NN" live preview of SDXL,
  which A1111 would otherwise download before every SDXL generation;

and under ``--extensions`` (default ``<out>/../extensions``) the extension ``zs2-tiny-openclip``,
whose ``preload.py`` registers the tiny OpenCLIP text model's architecture with ``open_clip``
before A1111 builds a model (open_clip knows only the architectures in its registry).

Shape: UNet width 32, levels ×1/×2/×4 with attention on the two deeper ones (two transformer
blocks on the deepest, like SDXL's deep stacks), a 2-layer CLIP-L of width 32 and a 2-layer
OpenCLIP "bigG" of width 64 (context 32 + 64 = 96, pooled 64, vector 64 + 3 × 512 = 1600),
a VAE that downsamples by 8. Nothing is downloaded; the same seed gives the same bytes. Run with
the webui's python (torch, safetensors, omegaconf, transformers, open_clip, clip, and sgm from the
webui's ``repositories/generative-models``)::

    python tests/webui/make_tiny_sdxl.py --out DATA/models --webui WEBUI
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from make_tiny_checkpoint import (
    check_tokenizer,
    randomise_zeroed_layers,
    rescale,
    save_checkpoint,
    write_clip_folder,
)

NAME = "tiny_sdxl"
OPENCLIP_ARCH = "ViT-bigG-14-zs2-tiny"
EXTENSION = "zs2-tiny-openclip"
CLIP_L_WIDTH = 32  # write_clip_folder's text model
OPENCLIP_WIDTH = 64
POOLED = 64
SIZE_EMBEDDING = 256  # per number; each size condition is a pair
VECTOR = POOLED + 3 * 2 * SIZE_EMBEDDING

OPENCLIP_CONFIG = {
    "embed_dim": POOLED,
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": OPENCLIP_WIDTH, "heads": 2, "layers": 2},
    # sgm drops the vision tower at once; open_clip still builds one, so keep it minimal
    "vision_cfg": {"image_size": 16, "patch_size": 8, "width": 32, "head_width": 16, "layers": 1},
}

PRELOAD = f'''"""Registers {OPENCLIP_ARCH!r}, the tiny OpenCLIP of the ZS² test checkpoint {NAME!r}.

A1111 runs every extension's preload.py while parsing its command line, before it builds a model.
"""

from pathlib import Path

import open_clip

open_clip.add_model_config(Path(__file__).resolve().parent / "{OPENCLIP_ARCH}.json")


def preload(parser):
    """Nothing to add to the command line."""
'''


def sgm_config(clip_folder: Path) -> dict[str, Any]:
    """An sgm ``DiffusionEngine`` config with SDXL base's structure and narrow layers."""

    def embedder(target: str, key: str, **params: Any) -> dict[str, Any]:
        return {"is_trainable": False, "input_key": key, "target": target, "params": params}

    encoders = "sgm.modules.encoders.modules"
    sizes = [
        embedder(f"{encoders}.ConcatTimestepEmbedderND", key, outdim=SIZE_EMBEDDING)
        for key in ("original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple")
    ]
    unet = {
        "adm_in_channels": VECTOR,
        "num_classes": "sequential",
        "use_checkpoint": False,
        "in_channels": 4,
        "out_channels": 4,
        "model_channels": 32,
        "attention_resolutions": [4, 2],
        "num_res_blocks": 2,
        "channel_mult": [1, 2, 4],
        "num_head_channels": 32,
        "use_spatial_transformer": True,
        "use_linear_in_transformer": True,
        "transformer_depth": [1, 1, 2],
        "context_dim": CLIP_L_WIDTH + OPENCLIP_WIDTH,
        "spatial_transformer_attn_type": "softmax-xformers",
        "legacy": False,
    }
    denoiser = "sgm.modules.diffusionmodules"
    vae = {
        "attn_type": "vanilla",
        "double_z": True,
        "z_channels": 4,
        "resolution": 256,
        "in_channels": 3,
        "out_ch": 3,
        "ch": 32,
        "ch_mult": [1, 1, 1, 1],
        "num_res_blocks": 1,
        "attn_resolutions": [],
        "dropout": 0.0,
    }
    params = {
        "scale_factor": 0.13025,
        "disable_first_stage_autocast": True,
        "denoiser_config": {
            "target": f"{denoiser}.denoiser.DiscreteDenoiser",
            "params": {
                "num_idx": 1000,
                "weighting_config": {"target": f"{denoiser}.denoiser_weighting.EpsWeighting"},
                "scaling_config": {"target": f"{denoiser}.denoiser_scaling.EpsScaling"},
                "discretization_config": {"target": f"{denoiser}.discretizer.LegacyDDPMDiscretization"},
            },
        },
        "network_config": {"target": f"{denoiser}.openaimodel.UNetModel", "params": unet},
        "conditioner_config": {
            "target": "sgm.modules.GeneralConditioner",
            "params": {
                "emb_models": [
                    embedder(
                        f"{encoders}.FrozenCLIPEmbedder",
                        "txt",
                        version=str(clip_folder),
                        layer="hidden",
                        layer_idx=1,
                    ),
                    embedder(
                        f"{encoders}.FrozenOpenCLIPEmbedder2",
                        "txt",
                        arch=OPENCLIP_ARCH,
                        version=None,
                        freeze=True,
                        layer="penultimate",
                        always_return_pooled=True,
                        legacy=False,
                    ),
                    *sizes,
                ]
            },
        },
        "first_stage_config": {
            "target": "sgm.models.autoencoder.AutoencoderKLInferenceWrapper",
            "params": {"embed_dim": 4, "ddconfig": vae, "lossconfig": {"target": "torch.nn.Identity"}},
        },
    }
    return {"model": {"target": "sgm.models.diffusion.DiffusionEngine", "params": params}}


def write_openclip_extension(extensions: Path) -> Path:
    """The extension that registers the tiny OpenCLIP architecture; returns its config file."""
    folder = extensions / EXTENSION
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{OPENCLIP_ARCH}.json"
    config.write_text(json.dumps(OPENCLIP_CONFIG, indent=1) + "\n", encoding="utf-8")
    (folder / "preload.py").write_text(PRELOAD, encoding="utf-8")
    return config


def write_vae_approx(models: Path, seed: int) -> Path:
    """Random weights shaped like A1111's ``VAEApprox`` (eight convs from 4 latent to 3 RGB channels).

    Saved as a torch zip without the entries newer torch adds (``.format_version``,
    ``.storage_alignment``) and A1111's restricted loader refuses, and without the random
    ``serialization_id``, so the file is reproducible.
    """
    channels = [4, 8, 16, 32, 64, 32, 16, 8, 3]
    kernels = [7, 5, 3, 3, 3, 3, 3, 3]
    generator = torch.Generator().manual_seed(seed + 2)
    state = {}
    for index, kernel in enumerate(kernels, start=1):
        shape = (channels[index], channels[index - 1], kernel, kernel)
        state[f"conv{index}.weight"] = (
            torch.randn(shape, generator=generator) * (shape[1] * kernel * kernel) ** -0.5
        )
        state[f"conv{index}.bias"] = torch.zeros(channels[index])
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = models / "VAE-approx" / "vaeapprox-sdxl.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    refused = (".format_version", ".storage_alignment", ".data/serialization_id")
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for entry in source.infolist():
            if entry.filename.split("/", 1)[1] not in refused:
                target.writestr(zipfile.ZipInfo(entry.filename, (1980, 1, 1, 0, 0, 0)), source.read(entry))
    return path


def instantiate(yaml_path: Path) -> torch.nn.Module:
    """The sgm model from the yaml; the CLIP-L text model from its config alone, as A1111 does."""
    from omegaconf import OmegaConf
    from sgm.util import instantiate_from_config
    from transformers import CLIPTextConfig, CLIPTextModel

    def config_only(folder: str, *args: Any, **kwargs: Any) -> CLIPTextModel:
        return CLIPTextModel(CLIPTextConfig.from_pretrained(folder))

    with mock.patch.object(CLIPTextModel, "from_pretrained", side_effect=config_only):
        model = instantiate_from_config(OmegaConf.load(yaml_path).model)
    for embedder in model.conditioner.embedders[:2]:
        embedder.device = "cpu"  # sgm's text embedders default to cuda
    return model.eval()


def conditioning(model: torch.nn.Module, prompts: list[str], size: int = 64) -> dict[str, torch.Tensor]:
    """``crossattn`` and ``vector`` of the prompts at a square image size, from sgm's conditioner."""
    sizes = torch.tensor([[size, size]] * len(prompts), dtype=torch.float32)
    batch = {
        "txt": prompts,
        "original_size_as_tuple": sizes,
        "crop_coords_top_left": torch.zeros_like(sizes),
        "target_size_as_tuple": sizes,
    }
    return model.conditioner(batch)


def calibrate(model: torch.nn.Module, generator: torch.Generator) -> dict[str, float]:
    """Scale the UNet's eps to unit std and decoded images to std 0.5; return what was measured."""
    unet = model.model.diffusion_model
    x = torch.randn(2, 4, 8, 8, generator=generator)
    t = torch.tensor([999, 500])

    def eps(cond: dict[str, torch.Tensor]) -> torch.Tensor:
        return unet(x, timesteps=t, context=cond["crossattn"], y=cond["vector"])

    cond = conditioning(model, ["a photo of a cat, best quality", ""])
    raw = float(eps(cond).std())
    rescale(unet.out[-1], 1.0 / raw)
    calibrated = eps(cond)
    other = eps(conditioning(model, ["a red fox running through fresh snow", ""]))
    resized = eps(conditioning(model, ["a photo of a cat, best quality", ""], size=1024))

    z = torch.randn(2, 4, 8, 8, generator=generator) / model.scale_factor
    vae = model.first_stage_model
    image_std = float(vae.decode(z).std())
    rescale(vae.decoder.conv_out, 0.5 / image_std)
    image = vae.decode(z)
    return {
        "crossattn width": float(cond["crossattn"].shape[-1]),
        "vector width": float(cond["vector"].shape[-1]),
        "eps std (raw)": raw,
        "eps std": float(calibrated.std()),
        "prompt effect on eps": float((calibrated - other).abs().mean()),
        "size effect on eps": float((calibrated - resized).abs().mean()),
        "image std": float(image.std()),
        "image in [-1, 1]": float((image.abs() <= 1).float().mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, metavar="MODELS_DIR", help="A1111 models folder")
    parser.add_argument(
        "--webui", type=Path, required=True, metavar="WEBUI_ROOT", help="A1111 root, for its sgm"
    )
    parser.add_argument(
        "--extensions", type=Path, help="A1111 extensions folder (default: OUT/../extensions)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random weights (default 0)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sgm_root = args.webui.resolve() / "repositories" / "generative-models"
    if not (sgm_root / "sgm").is_dir():
        raise SystemExit(f"{sgm_root} has no sgm package: is --webui an A1111 root?")
    sys.path.insert(0, str(sgm_root))
    import open_clip
    from omegaconf import OmegaConf

    models = args.out.resolve()
    extensions = (args.extensions or models.parent / "extensions").resolve()
    clip_folder = models / f"{NAME}-clip"
    checkpoints = models / "Stable-diffusion"
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_clip_folder(clip_folder)
    check_tokenizer(clip_folder)
    open_clip.add_model_config(write_openclip_extension(extensions))
    approx = write_vae_approx(models, args.seed)
    yaml_path = checkpoints / f"{NAME}.yaml"
    OmegaConf.save(OmegaConf.create(sgm_config(clip_folder)), yaml_path)

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
        model = instantiate(yaml_path)
        redrawn = randomise_zeroed_layers(model, generator)
        stats = calibrate(model, generator)
    checkpoint = checkpoints / f"{NAME}.safetensors"
    values = save_checkpoint(model, checkpoint, f"tiny random SDXL base, seed {args.seed}")
    print(f"redrew {redrawn} zero-initialised layers; " + ", ".join(f"{k} {v:.3g}" for k, v in stats.items()))
    print(f"wrote {checkpoint} ({values / 1e6:.2f} M values, {checkpoint.stat().st_size / 1e6:.1f} MB)")
    print(f"wrote {yaml_path}, {clip_folder}/, {approx}, {extensions / EXTENSION}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
