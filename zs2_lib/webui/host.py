"""The webui as a run sees it: the only module of a run that reads A1111's ``modules``.

Features ask the host through :class:`A1111` (see :class:`zs2_lib.webui.run.Host`), so they can be
tested on a fake host and another webui needs only another adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from modules import rng, sd_samplers, shared

from zs2_lib.webui import folders
from zs2_lib.webui.features.momentum import Momentum

MISSING = object()
"""A setting with no stored value (its default applies)."""


class A1111:
    """AUTOMATIC1111 stable-diffusion-webui v1.10."""

    def unet(self) -> torch.nn.Module:
        """The UNet A1111 samples with right now (it changes with refiner and hires checkpoints)."""
        return shared.sd_model.model.diffusion_model

    def is_edit_model(self) -> bool:
        """An InstructPix2Pix model, whose CFG batch has an image-uncond block."""
        return shared.sd_model.cond_stage_key == "edit"

    def momentum(self, *, offload: bool) -> Momentum:
        """The momentum feature that reads this webui's CFG batch layout."""
        return Momentum(offload=offload)

    def cut_short(self) -> str | None:
        """ "Interrupt" or "Skip" if the user pressed it during the current batch, else None."""
        if shared.state.interrupted:
            return "Interrupt"
        if shared.state.skipped:
            return "Skip"
        return None

    def job_state(self) -> Any:
        """A1111's job state (``shared.state``): its ``interrupted`` flag makes ``process_images`` skip
        the batches it has not begun."""
        return shared.state

    def option(self, key: str, default: Any = None) -> Any:
        """A setting's current value (its default if never set), or ``default`` if no such setting."""
        return getattr(shared.opts, key, default)

    def interpolator_folders(self) -> list[Path]:
        """Where users put a learned interpolator's weights: ``<models>/RIFE`` (listed per request)."""
        return folders.interpolator_folders()

    def device(self) -> torch.device:
        """The device A1111 samples on (the RIFE interpolator runs there too)."""
        return shared.device

    def brownian_sampler(self, name: str) -> bool:
        """Whether the sampler of that name draws its noise from Brownian trees (the SDE samplers)."""
        config = sd_samplers.find_sampler_config(name)
        return config is not None and bool(config.options.get("brownian_noise", False))

    def frame_draw(self, image_rng: Any) -> Callable[[int], torch.Tensor] | None:
        """Image i's next draw alone, as ``ImageRNG.next()`` would draw it (after its first call).

        None for an RNG that is not A1111's own (another extension's wrapper): then whole batches.
        """
        if type(image_rng) is not rng.ImageRNG:
            return None

        def draw(index: int) -> torch.Tensor:
            noise = rng.randn_without_seed(image_rng.shape, generator=image_rng.generators[index])
            return noise.to(shared.device)

        return draw

    def seed_rng(self, shape: Sequence[int], seeds: list[int]) -> Any:
        """A1111's RNG of one noise tensor per seed (``create_random_tensors`` draws its first)."""
        return rng.ImageRNG(tuple(shape), seeds)

    def set_option(self, key: str, value: Any) -> None:
        """Put a setting back as it was: ``value``, or its default when ``value`` is ``MISSING``."""
        if value is MISSING:
            shared.opts.data.pop(key, None)
        else:
            shared.opts.data[key] = value

    def stored_option(self, key: str) -> Any:
        """A setting's stored value (``MISSING`` when only its default applies)."""
        return shared.opts.data.get(key, MISSING)

    def empty_cond(self) -> torch.Tensor:
        """The empty prompt's token embeddings (77 × width), which A1111 pads conds of unequal length with."""
        empty = shared.sd_model.cond_stage_model_empty_prompt
        return empty[0] if empty.dim() == 3 else empty

    # img2img: each frame's init image (features/img2img.py) ------------------------------------

    @property
    def masks(self) -> A1111Masks:
        """Inpainting masks per frame."""
        return A1111Masks()

    def init_images_tensor(self, p: Any, frames: list[Any]) -> torch.Tensor:
        """Frames as A1111's img2img prepares init images (flattened, resized by ``p.resize_mode``).

        Returns [B, 3, H, W] in [0, 1] on the VAE's device and dtype.
        """
        from modules import devices, images

        arrays = []
        for frame in frames:
            image = images.flatten(frame, shared.opts.img2img_background_color)
            if p.resize_mode != 3:  # 3 is "just resize (latent upscale)": done on the latent
                image = images.resize_image(p.resize_mode, image, p.width, p.height)
            arrays.append(np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0))
        return torch.from_numpy(np.stack(arrays)).to(shared.device, dtype=devices.dtype_vae)

    def encode_init(self, p: Any, image: torch.Tensor, seeds: list[int], mean: bool) -> torch.Tensor:
        """The init latents of ``image`` (one frame at a time, as A1111 does), each from its own seed.

        A1111 draws the VAE posterior sample from the global torch RNG, so the latent depends on what
        ran before; here frame i's sample is drawn under ``seeds[i]`` (the CPU generator, which ldm's and
        sgm's posteriors draw from on every device), or is the posterior mean when ``mean``.
        """
        latent = _seeded_samples(image, seeds, mean)
        if p.resize_mode == 3:
            size = (p.height // 8, p.width // 8)
            latent = torch.nn.functional.interpolate(latent, size=size, mode="bilinear")
        return latent

    @contextmanager
    def seeded_encoding(self, seeds: list[int], mean: bool) -> Iterator[list[Encoded]]:
        """While open, A1111's img2img (``p.init``) encodes images as :meth:`encode_init` does.

        Yields the list of what was encoded meanwhile, so a run can reuse a latent instead of
        encoding the same frames again under the same seeds.
        """
        from modules import processing

        encoded: list[Encoded] = []
        original = processing.images_tensor_to_samples

        def encode(image: torch.Tensor, approximation: int | None = None, model: Any = None) -> torch.Tensor:
            latent = _seeded_samples(image, seeds[: len(image)], mean)
            encoded.append(Encoded(image, latent))
            return latent

        processing.images_tensor_to_samples = encode
        try:
            yield encoded
        finally:
            processing.images_tensor_to_samples = original

    def image_conditioning(
        self, p: Any, image: torch.Tensor, latent: torch.Tensor, mask: torch.Tensor | None, seeds: list[int]
    ) -> torch.Tensor:
        """``p.img2img_image_conditioning`` frame by frame, each under its own seed.

        Inpainting models encode the masked image with a posterior sample from the CPU generator (as
        :func:`_seeded_encodes`); drawn per frame under ``seeds[i]``, a chunk's conditioning is the
        same as in one batch. Seeding that generator alone (not ``torch.manual_seed``, which also
        seeds every accelerator and, while CUDA is not initialised, queues a formatted stack for each)
        keeps the per-frame calls cheap for the models whose conditioning is a constant.
        """
        parts = []
        with torch.random.fork_rng(devices=[]):
            for index, seed in enumerate(seeds):
                frame, frame_latent = image[index : index + 1] * 2 - 1, latent[index : index + 1]
                frame_mask = None if mask is None else mask[index : index + 1]
                torch.default_generator.manual_seed(seed)
                parts.append(p.img2img_image_conditioning(frame, frame_latent, frame_mask, p.mask_round))
        return torch.cat(parts)

    def infotext(self, p: Any, index: int) -> str:
        """The infotext of image ``index`` of the job as its result will give it (``Processed.infotext``)."""
        from modules import processing

        images = (p.all_prompts, p.all_seeds, p.all_subseeds)
        position, iteration = index % p.batch_size, index // p.batch_size
        return processing.create_infotext(
            p, *images, comments=[], position_in_batch=position, iteration=iteration
        )

    def color_correction(self, frame: Any) -> Any:
        """A1111's colour-correction target for one init frame."""
        from modules import images, processing

        image = images.flatten(frame, shared.opts.img2img_background_color)
        return processing.setup_color_correction(image)


@dataclass(frozen=True)
class Encoded:
    """An image batch ([B, 3, H, W] in [0, 1]) and its seeded init latents."""

    image: torch.Tensor
    latent: torch.Tensor


def _seeded_samples(image: torch.Tensor, seeds: list[int], mean: bool) -> torch.Tensor:
    """``images_tensor_to_samples`` of a batch, frame i's posterior sample drawn under ``seeds[i]``.

    The webui encodes a batch one frame at a time (``encode_first_stage`` per frame, the posterior
    sampled right after it by ldm, within it by sgm), so one call with each frame's encode started
    from its seed gives what one call per frame gives, without a per-frame VAE ``.to()`` and RNG
    save (the larger part of ZS² v2v's overhead on a fast UNet, by profile). TAESD has no posterior.
    """
    from modules.sd_samplers_common import approximation_indexes, images_tensor_to_samples

    model = shared.sd_model
    approximation = approximation_indexes.get(shared.opts.sd_vae_encode_method)
    if approximation == 3:
        return images_tensor_to_samples(image, approximation, model)
    with torch.random.fork_rng(devices=[]), _posterior_mean(model, mean), _seeded_encodes(model, seeds):
        return images_tensor_to_samples(image, approximation, model)


@contextmanager
def _seeded_encodes(model: Any, seeds: list[int]) -> Iterator[None]:
    """While open, the i-th ``model.encode_first_stage`` call (one frame) starts from ``seeds[i]``."""
    remaining = iter(seeds)
    encode = model.encode_first_stage

    def seeded(x: torch.Tensor) -> Any:
        seed = next(remaining, None)
        if len(x) != 1 or seed is None:
            raise RuntimeError(
                f"ZS2: the webui encoded {len(x)} image(s) in one call, past the {len(seeds)} frames "
                "seeded; video to video needs one encode per frame (A1111 1.10's images_tensor_to_samples)"
            )
        torch.default_generator.manual_seed(seed)  # the posterior draws from it; fork_rng restores it
        return encode(x)

    with _replaced(model, "encode_first_stage", seeded):
        yield


@contextmanager
def _posterior_mean(model: Any, on: bool) -> Iterator[None]:
    """While on, the VAE encodes to its posterior mean (ldm: ``mode()``; sgm: regulariser unsampled)."""
    if not on:
        yield
        return
    regularization = getattr(getattr(model, "first_stage_model", None), "regularization", None)
    if regularization is not None and hasattr(regularization, "sample"):  # sgm (SDXL)
        previous = regularization.sample
        regularization.sample = False
        try:
            yield
        finally:
            regularization.sample = previous
        return
    encode = model.encode_first_stage
    with _replaced(model, "encode_first_stage", lambda x: encode(x).mode()):  # ldm: a tensor is scaled as is
        yield


@contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    """While open, ``owner.<name>`` is ``value`` as an instance attribute (a method shadowed)."""
    previous = vars(owner).get(name, MISSING)
    setattr(owner, name, value)
    try:
        yield
    finally:
        if previous is MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, previous)


@dataclass
class MaskedFrames:
    """One chunk's init images and masks, prepared frame by frame as A1111's ``p.init`` prepares one.

    image: [B, 3, H, W] in [0, 1] (cropped to the masked area for "only masked", filled as asked);
    condition_mask: [B, 1, H, W], the image masks the inpainting conditioning takes;
    mask, nmask: [B, C, h, w], the latent masks (``p.mask``/``p.nmask``: 1 keeps the init latent);
    overlays: the source frames with the masked area cut out, composited over the outputs;
    corrections: colour-correction targets.
    """

    image: torch.Tensor
    condition_mask: torch.Tensor
    mask: torch.Tensor
    nmask: torch.Tensor
    overlays: list[Any]
    corrections: list[Any]


class A1111Masks:
    """Inpainting masks per frame, made as A1111's ``StableDiffusionProcessingImg2Img.init`` makes one."""

    def binary(self, p: Any, mask: Any) -> Any:
        """The mask as A1111 reads it (alpha or luminance, an "L" image), inverted if asked."""
        from modules.processing import create_binary_mask
        from PIL import ImageOps

        image_mask = create_binary_mask(mask, round=p.mask_round)
        return ImageOps.invert(image_mask) if p.inpainting_mask_invert else image_mask

    def blurred(self, p: Any, mask: Any) -> Any:
        """:meth:`binary` with A1111's mask blur (before any resize or crop)."""
        import cv2
        from PIL import Image

        image_mask = self.binary(p, mask)
        for blur, shape in ((p.mask_blur_x, lambda k: (k, 1)), (p.mask_blur_y, lambda k: (1, k))):
            if blur > 0:
                kernel = 2 * int(2.5 * blur + 0.5) + 1
                image_mask = Image.fromarray(cv2.GaussianBlur(np.array(image_mask), shape(kernel), blur))
        return image_mask

    def union(self, p: Any, masks: Sequence[Any]) -> Any:
        """One mask covering all of ``masks``, as ``p.image_mask`` (so "only masked" crops them all)."""
        from PIL import Image, ImageOps

        union = np.max(np.stack([np.array(self.binary(p, mask)) for mask in masks]), axis=0)
        image = Image.fromarray(union.astype(np.uint8), mode="L")
        return ImageOps.invert(image) if p.inpainting_mask_invert else image

    def crop_region(self, p: Any) -> tuple[int, int, int, int] | None:
        """The "only masked" region ``p.init`` chose (None for "whole picture" or a blank mask)."""
        if not p.inpaint_full_res or p.paste_to is None:
            return None
        x, y, width, height = p.paste_to
        return (x, y, x + width, y + height)

    def prepare(
        self, p: Any, frames: list[Any], blurred: list[Any], latent_shape: tuple[int, ...]
    ) -> MaskedFrames:
        """Frame i with blurred mask i, as A1111 prepares one init image and its mask."""
        from modules import devices, images, masking, processing
        from PIL import Image, ImageOps

        region = self.crop_region(p)
        arrays, condition, latent, overlays, corrections = [], [], [], [], []
        for frame, mask in zip(frames, blurred, strict=True):
            if region is not None:
                image_mask = images.resize_image(2, mask.convert("L").crop(region), p.width, p.height)
                overlay_mask = mask
            else:
                image_mask = images.resize_image(p.resize_mode, mask, p.width, p.height)
                doubled = np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8)
                overlay_mask = Image.fromarray(doubled)
            latent_mask = p.latent_mask if p.latent_mask is not None else image_mask
            image = images.flatten(frame, shared.opts.img2img_background_color)
            if region is None and p.resize_mode != 3:
                image = images.resize_image(p.resize_mode, image, p.width, p.height)
            if overlay_mask.size != image.size:
                overlay_mask = images.resize_image(p.resize_mode, overlay_mask, image.width, image.height)
            masked = Image.new("RGBa", image.size)
            masked.paste(
                image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(overlay_mask.convert("L"))
            )
            overlays.append(masked.convert("RGBA"))
            if region is not None:
                image = images.resize_image(2, image.crop(region), p.width, p.height)
            if p.inpainting_fill != 1:
                image = masking.fill(image, latent_mask)
            corrections.append(processing.setup_color_correction(image))
            arrays.append(np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0))
            condition.append(np.array(image_mask.convert("L")).astype(np.float32) / 255.0)
            small = latent_mask.convert("RGB").resize((latent_shape[-1], latent_shape[-2]))
            latent.append(np.array(small, dtype=np.float32)[..., 0] / 255)
        condition_mask = torch.from_numpy(np.stack(condition)[:, None])
        latmask = np.stack(latent)
        if p.mask_round:
            condition_mask, latmask = torch.round(condition_mask), np.around(latmask)
        latmask = np.repeat(latmask[:, None], latent_shape[1], axis=1)
        image = torch.from_numpy(np.stack(arrays)).to(shared.device, dtype=devices.dtype_vae)
        mask = torch.asarray(1.0 - latmask).to(shared.device).type(devices.dtype)
        nmask = torch.asarray(latmask).to(shared.device).type(devices.dtype)
        return MaskedFrames(image, condition_mask, mask, nmask, overlays, corrections)

    def fill_latent(
        self, p: Any, latent: torch.Tensor, masks: MaskedFrames, noise: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """Masked content "latent noise" (``noise()``) or "latent nothing", as A1111 fills it.

        A1111 fills with each frame's seed noise, its initial noise; a run passes its chained noise.
        """
        if p.inpainting_fill == 2:
            return latent * masks.mask + noise().to(latent) * masks.nmask
        if p.inpainting_fill == 3:
            return latent * masks.mask
        return latent
