"""Test-only: teach Forge's model detection the project's tiny random SD1.x checkpoint.

Both Forges recognise a checkpoint by the shapes in its state dict and then build the text encoder
and the VAE from fixed configs for real SD 1.5 (CLIP-L, 768 wide; a 128-channel VAE). The tiny
checkpoint (``tests/webui/make_tiny_checkpoint.py``, layouts ``sd1`` and ``mini``) has a 32-wide
UNet, text encoder and VAE, so neither Forge recognises it as shipped. At import (Forge imports
every extension's ``scripts/*.py`` before it loads a model) this module registers a "tiny SD15"
model entry, first in the detection list, that matches only UNets with the tiny checkpoint's
``context_dim`` and ``model_channels``:

* Forge ``main`` (``backend/``, ``huggingface_guess``): a subclass of ``huggingface_guess``'s
  ``SD15`` whose ``huggingface_repo`` is a folder written here (``model_index.json``, scheduler,
  text encoder, tokenizer and VAE configs), so ``backend.loader.forge_loader`` builds the tiny
  parts and picks the ``StableDiffusion`` engine as for SD 1.5;
* Forge Classic (``ldm_patched``): a subclass of ``supported_models.SD15`` whose CLIP target reads
  the tiny text-encoder config, and a VAE class for ``modules_forge.forge_loader`` that passes the
  tiny VAE config when the VAE state dict is the tiny one (any other VAE loads as before).

All configs come from the builder's own constants and functions (``LAYOUTS``,
``text_encoder_config``, ``model_config``, ``write_clip_folder``); the builder is found in a parent
folder of this file's real path (``tests/webui/``) or at ``$ZS2_TINY_BUILDER``. The Forge fixtures
(``conftest.py``) link this file as ``<data dir>/extensions/zs2-tiny-model/scripts/zs2_tiny_model.py``;
generated files go to ``<data dir>/zs2-tiny-model/``. Nothing is downloaded and no real checkpoint
is affected.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BUILDER_FILE = "make_tiny_checkpoint.py"
BUILDER_ENV = "ZS2_TINY_BUILDER"
ENTRY_NAME = "ZS2TinySD15"
LOG_PREFIX = "[zs2-tiny-model]"


def log(message: str) -> None:
    print(f"{LOG_PREFIX} {message}", flush=True)


# the builder -----------------------------------------------------------------------------------


def builder_path() -> Path:
    """``$ZS2_TINY_BUILDER``, else the first ``make_tiny_checkpoint.py`` in a parent of this file."""
    configured = os.environ.get(BUILDER_ENV)
    if configured:
        return Path(configured).resolve()
    for folder in Path(__file__).resolve().parents:
        if (folder / BUILDER_FILE).is_file():
            return folder / BUILDER_FILE
    raise FileNotFoundError(f"{BUILDER_FILE} not found above {__file__}; set {BUILDER_ENV}")


def load_builder() -> ModuleType:
    """Import the tiny checkpoint builder as a private module (it imports only torch and stdlib)."""
    path = builder_path()
    name = "zs2_tiny_checkpoint_builder"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


class TinyConfigs:
    """The tiny checkpoint's configs, from the builder's ``sd1`` layout (``mini`` has the same widths)."""

    def __init__(self, builder: ModuleType, folder: Path) -> None:
        self.builder = builder
        self.folder = folder
        self.layout = builder.LAYOUTS["sd1"]
        params = builder.model_config(self.layout, folder / "tokenizer")["model"]["params"]
        self.params: dict[str, Any] = params
        self.ddconfig: dict[str, Any] = params["first_stage_config"]["params"]["ddconfig"]
        self.embed_dim: int = params["first_stage_config"]["params"]["embed_dim"]

    @property
    def unet_match(self) -> dict[str, Any]:
        """The detected UNet config values that identify the tiny checkpoint (as SD15's keys)."""
        return {
            "context_dim": self.layout.context_dim,
            "model_channels": self.layout.model_channels,
            "use_linear_in_transformer": False,
            "adm_in_channels": None,
            "use_temporal_attention": False,
        }

    @property
    def unet_extra(self) -> dict[str, Any]:
        return {"num_heads": self.layout.num_heads, "num_head_channels": -1}

    @property
    def text_encoder_file(self) -> Path:
        return self.folder / "text_encoder" / "config.json"

    def is_tiny_vae(self, state_dict: dict[str, Any]) -> bool:
        """True for the tiny VAE's state dict (ldm keys, without the ``first_stage_model.`` prefix)."""
        conv_in = state_dict.get("encoder.conv_in.weight")
        levels = {key.split(".")[2] for key in state_dict if key.startswith("encoder.down.")}
        return (
            conv_in is not None
            and conv_in.shape[0] == self.ddconfig["ch"]
            and len(levels) == len(self.ddconfig["ch_mult"])
        )

    def diffusers_vae_config(self) -> dict[str, Any]:
        """The VAE as a diffusers ``AutoencoderKL`` config (what Forge main's VAE class reads)."""
        ddconfig = self.ddconfig
        levels = len(ddconfig["ch_mult"])
        return {
            "_class_name": "AutoencoderKL",
            "act_fn": "silu",
            "block_out_channels": [ddconfig["ch"] * mult for mult in ddconfig["ch_mult"]],
            "down_block_types": ["DownEncoderBlock2D"] * levels,
            "up_block_types": ["UpDecoderBlock2D"] * levels,
            "in_channels": ddconfig["in_channels"],
            "out_channels": ddconfig["out_ch"],
            "latent_channels": ddconfig["z_channels"],
            "layers_per_block": ddconfig["num_res_blocks"],
            "norm_num_groups": 32,
            "sample_size": ddconfig["resolution"],
            "scaling_factor": self.params["scale_factor"],
        }

    def scheduler_config(self) -> dict[str, Any]:
        """ldm's "linear" schedule (linear in sqrt(beta)) is diffusers' ``scaled_linear``."""
        return {
            "_class_name": "PNDMScheduler",
            "beta_start": self.params["linear_start"],
            "beta_end": self.params["linear_end"],
            "beta_schedule": "scaled_linear",
            "num_train_timesteps": self.params["timesteps"],
            "prediction_type": "epsilon",
            "set_alpha_to_one": False,
            "skip_prk_steps": True,
            "steps_offset": 1,
            "clip_sample": False,
            "trained_betas": None,
        }

    def write(self) -> None:
        """Write a diffusers-style model folder: what Forge main reads, and the text config Classic reads."""
        write_json = self.builder.write_json
        self.folder.mkdir(parents=True, exist_ok=True)
        self.builder.write_clip_folder(self.folder / "tokenizer", self.layout.context_dim)
        for part in ("text_encoder", "vae", "scheduler"):
            (self.folder / part).mkdir(exist_ok=True)
        write_json(self.text_encoder_file, self.builder.text_encoder_config(self.layout.context_dim))
        write_json(self.folder / "vae" / "config.json", self.diffusers_vae_config())
        write_json(self.folder / "scheduler" / "scheduler_config.json", self.scheduler_config())
        index = {
            "_class_name": "StableDiffusionPipeline",
            "scheduler": ["diffusers", "PNDMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
        write_json(self.folder / "model_index.json", index)


# Forge main ------------------------------------------------------------------------------------


def register_main(configs: TinyConfigs) -> None:
    """Put a tiny SD15 entry first in ``huggingface_guess``'s model list (Forge main)."""
    from huggingface_guess import model_list

    if any(entry.__name__ == ENTRY_NAME for entry in model_list.models):
        return
    entry = type(
        ENTRY_NAME,
        (model_list.SD15,),
        {
            "__doc__": "The project's tiny random SD1.x checkpoint, loaded as SD 1.5 with tiny parts.",
            "huggingface_repo": str(configs.folder),  # absolute: os.path.join keeps it as is
            "unet_config": configs.unet_match,
            "unet_extra_config": configs.unet_extra,
        },
    )
    model_list.models.insert(0, entry)


# Forge Classic ---------------------------------------------------------------------------------


def register_classic(configs: TinyConfigs) -> None:
    """Put a tiny SD15 entry first in ``supported_models.models`` and a tiny-aware VAE in the loader."""
    from ldm_patched.modules import sd1_clip, supported_models, supported_models_base
    from modules_forge import forge_loader

    if any(entry.__name__ == ENTRY_NAME for entry in supported_models.models):
        return
    text_config = str(configs.text_encoder_file)

    def clip_target(self: Any) -> Any:
        target = supported_models_base.ClipTarget(sd1_clip.SD1Tokenizer, sd1_clip.SD1ClipModel)
        target.params["textmodel_json_config"] = text_config  # passed on to SDClipModel
        return target

    entry = type(
        ENTRY_NAME,
        (supported_models.SD15,),
        {
            "__doc__": "The project's tiny random SD1.x checkpoint, loaded as SD 1.5 with tiny parts.",
            "unet_config": configs.unet_match,
            "unet_extra_config": configs.unet_extra,
            "clip_target": clip_target,
        },
    )
    supported_models.models.insert(0, entry)

    vae_config = {"params": {"ddconfig": dict(configs.ddconfig), "embed_dim": configs.embed_dim}}
    base_vae = forge_loader.VAE

    class TinyAwareVAE(base_vae):  # type: ignore[misc, valid-type]
        """Classic's VAE; the tiny VAE state dict gets the tiny config instead of SD's fixed one."""

        def __init__(self, sd: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> None:
            if sd is not None and kwargs.get("config") is None and configs.is_tiny_vae(sd):
                kwargs["config"] = vae_config
            super().__init__(sd, *args, **kwargs)

    forge_loader.VAE = TinyAwareVAE


# entry point -----------------------------------------------------------------------------------


def variant() -> str:
    """``main`` (lllyasviel's Forge, ``backend/``) or ``classic`` (Haoming02's, ``ldm_patched``)."""
    if importlib.util.find_spec("backend") is not None and importlib.util.find_spec("huggingface_guess"):
        return "main"
    if importlib.util.find_spec("ldm_patched") is not None:
        return "classic"
    raise RuntimeError("neither Forge main (backend, huggingface_guess) nor Forge Classic (ldm_patched)")


def register() -> None:
    from modules import paths_internal

    forge = variant()
    configs = TinyConfigs(load_builder(), Path(paths_internal.data_path).resolve() / "zs2-tiny-model")
    configs.write()
    if forge == "main":
        register_main(configs)
    else:
        register_classic(configs)
    match = ", ".join(f"{key} {configs.unet_match[key]}" for key in ("context_dim", "model_channels"))
    heads = configs.layout.num_heads
    log(f"registered tiny SD15 ({match}, {heads} heads) for Forge {forge}; configs in {configs.folder}")


register()
