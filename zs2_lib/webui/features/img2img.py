"""img2img: frame k of the video starts from frame k of a source video (paper §5, video editing).

The source is the ``video`` parameter (a file or folder on the server, or base64 data) or the
request's init images (one per frame, or one for every frame). :func:`resolve` reads it before the
run is planned, so the video's length is the source's and a bad source is refused before sampling.

A1111 encodes ``p.init_images`` once, in ``p.init``, with the VAE posterior sampled from the global
torch RNG. The run hands ``p.init`` the first chunk's frames only (so its checks and conditioning see
a batch of the right size) and, at every chunk (``process_batch``, before ``p.sample``), sets
``p.init_latent`` and ``p.image_conditioning`` to that chunk's frames, each encoded under a seed of
its own (:func:`posterior_seed`) or to its posterior mean. Only one chunk's latents exist at a time;
a rerun, and a chunked run, get the latents of one batch. The added noise is ``p.rng``'s, which the
noise feature already chains across frames.

With an inpainting mask (the tab's one mask for every frame, or ``mask_video``: mask k for frame k),
each chunk's frames and masks are prepared as ``p.init`` prepares one init image (blur, crop of "only
masked", fill, latent mask, overlay for the composite), and ``p.mask``/``p.nmask``/``p.overlay_images``
are the chunk's. A mask video's union is ``p.image_mask``, so "only masked" crops one region for all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zs2_lib.names import console
from zs2_lib.params import FIELD_BY_NAME, ParamError, ZS2Params
from zs2_lib.values import ERROR_PREFIX, error
from zs2_lib.video_input import VideoFrames, read_frames, resolve_source
from zs2_lib.webui.features.noise import PassNoise
from zs2_lib.webui.run import Feature, Run

POSTERIOR_SEED_OFFSET = 0x5A5A_0D1E
"""Frame seed + this seeds its VAE posterior sample, so the sample is not the frame's initial noise."""


def posterior_seed(seed: int) -> int:
    """The seed of a frame's VAE posterior sample (within torch's accepted range)."""
    return (int(seed) + POSTERIOR_SEED_OFFSET) % 2**63


def condition_seeds(seeds: list[int]) -> list[int]:
    """The seeds of the posterior samples in each frame's image conditioning (inpainting models)."""
    return [(seed + 1) % 2**63 for seed in seeds]


@dataclass
class InitFrames:
    """The source of a v2v run: its frames (PIL images or uint8 arrays) and where they came from."""

    frames: Sequence[Any]
    video: VideoFrames | None = None
    temporary: Path | None = None
    still: bool = False  # one init image for every frame, not a video
    masks: Sequence[Any] | None = None
    """The mask video's frames (uint8 arrays), one per frame; None: the tab's mask, if any."""

    @property
    def name(self) -> str:
        """What the console and infotext call the source (never its data)."""
        if self.video is not None:
            return f'video "{self.video.name}"'
        return "init image" if self.still else "init images"

    def chunk(self, first: int, size: int) -> list[Any]:
        """Frames ``first`` .. ``first + size - 1`` as PIL images; past the end, the last frame again.

        Balanced chunks sample a few frames past the video's end, which the video leaves out.
        """
        return _pick(self.frames, first, size)

    def mask_chunk(self, first: int, size: int) -> list[Any]:
        """Masks ``first`` .. ``first + size - 1`` of the mask video, as :meth:`chunk` picks frames."""
        return _pick(self.masks if self.masks is not None else [], first, size)


def _pick(frames: Sequence[Any], first: int, size: int) -> list[Any]:

    last = len(frames) - 1
    picked = [frames[min(index, last)] for index in range(first, first + size)]
    return [Image.fromarray(frame) if isinstance(frame, np.ndarray) else frame for frame in picked]


def is_img2img(p: Any) -> bool:
    """Whether ``p`` is an img2img generation."""
    return hasattr(p, "init_images") and hasattr(p, "denoising_strength")


def _called(name: str) -> str:
    """How messages name a field: as labelled, then its API name (``Video input (video)``)."""
    return FIELD_BY_NAME[name].called


def resolve(p: Any, params: ZS2Params, given: frozenset[str]) -> tuple[ZS2Params, InitFrames]:
    """The source frames of an img2img run, and the params with the video's frame count and fps.

    ``given`` are the names a request set explicitly (a dict arg); a ``frames`` given there must match
    the source's, an ``fps`` given there wins over the source's.

    Raises:
        ParamError: an unreadable source, a bad range, a mask, or a disagreeing ``frames``.
    """
    if params.mask_video and getattr(p, "image_mask", None) is not None:
        raise error(
            _called("mask_video"),
            "mask_video and mask",
            "both give masks",
            "accepted: a mask video or one mask",
        )
    init_images = [image for image in (p.init_images or []) if image is not None]
    if params.video:
        if len(init_images) > 1:
            raise error(
                _called("video"),
                "video and init_images",
                "both give frames",
                "accepted: one source of frames",
            )
        source = _read_video(params)
        updates: dict[str, Any] = {"frames": len(source.frames)}
        fps = source.video.output_fps if source.video else None
        if fps is not None and "fps" not in given:
            updates["fps"] = min(max(fps, 1e-3), FIELD_BY_NAME["fps"].high)
    elif len(init_images) > 1:
        source, updates = InitFrames(init_images), {"frames": len(init_images)}
    elif init_images:
        source, updates = InitFrames(init_images * params.frames, still=True), {}
    else:
        raise error(
            _called("video"),
            "",
            "is empty and no init image was given",
            "accepted: a video input or init images",
        )
    if "frames" in given and params.frames != updates.get("frames", params.frames):
        _remove(source)
        origin = "the video input" if params.video else "init_images"
        raise error(
            _called("frames"), params.frames, f"disagrees with the {updates['frames']} frames of {origin}",
            f"accepted: {updates['frames']}, or leave frames out",
        )  # fmt: skip
    params = dataclasses.replace(params, **updates)
    if params.mask_video:
        _read_masks(params, source)
    return params, source


def _read_masks(params: ZS2Params, source: InitFrames) -> None:
    """Mask k of the mask video for frame k (the video input's start, count and step)."""
    try:
        masks = _read_video(dataclasses.replace(params, video=params.mask_video))
    except ParamError as failure:  # the reader names the source field: name this one
        _remove(source)
        message = str(failure).replace(
            f"{ERROR_PREFIX}{_called('video')}: ", f"{ERROR_PREFIX}{_called('mask_video')}: ", 1
        )
        raise ParamError(message) from None
    _remove(masks)
    if len(masks.frames) < params.frames:
        _remove(source)
        raise error(
            _called("mask_video"), len(masks.frames), f"masks are fewer than the {params.frames} frames",
            "accepted: at least one mask per frame",
        )  # fmt: skip
    source.masks = masks.frames[: params.frames]


def _read_video(params: ZS2Params) -> InitFrames:
    resolved = resolve_source(params.video)
    try:
        video = read_frames(
            resolved.path,
            start=params.video_start,
            count=params.video_frames or None,
            step=params.video_step,
            limit=int(FIELD_BY_NAME["frames"].high),
        )
    except ParamError:
        if resolved.temporary:
            resolved.path.unlink(missing_ok=True)
        raise
    video = dataclasses.replace(video, name=resolved.name)
    return InitFrames(video.frames, video, resolved.path if resolved.temporary else None)


def _remove(source: InitFrames) -> None:
    if source.temporary is not None:
        source.temporary.unlink(missing_ok=True)


class Img2ImgFrames(Feature):
    """Per-chunk init latents from the source frames, each frame encoded under its own seed."""

    def __init__(self, source: InitFrames) -> None:
        self.source = source
        self._blurred: Any = None
        self._encoded: list[Any] = []  # what p.init encoded: the first chunk, reused by its batch
        self._fill: PassNoise | None = None  # the "latent noise" fill's chain, per video

    def install(self, run: Run) -> None:
        run.undo.callback(_remove, self.source)
        run.undo.callback(self._encoded.clear)
        p, plan = run.p, run.plan
        run.set_attribute(p, "init_images", self.source.chunk(0, plan.batch_size))
        run.set_attribute(p, "init", self._seeded_init(run, p.init))
        if self.source.masks is not None:  # p.init sets up masking (and "only masked" crops) for all
            masks = [Image.fromarray(mask) for mask in self.source.masks]
            run.set_attribute(p, "image_mask", run.host.masks.union(p, masks))
        if self.source.video is not None:
            video = self.source.video
            first, last = video.indices[0], video.indices[-1]
            console(f"{len(video.frames)} frames from {video.name} (source frames {first} to {last})")

    def _seeded_init(self, run: Run, init: Any) -> Any:
        """``p.init`` encoding the first chunk under the seeds its batch uses, not the global RNG.

        That batch then reuses those latents (:meth:`batch`), so no frame is encoded twice.
        """

        def seeded_init(all_prompts: Any, all_seeds: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            seeds = [posterior_seed(seed) for seed in all_seeds[: run.plan.batch_size]]
            with run.host.seeded_encoding(seeds, run.params.init_encoding == "mean") as encoded:
                result = init(all_prompts, all_seeds, *args, **kwargs)
            self._encoded[:] = encoded
            return result

        return seeded_init

    def _encode(self, run: Run, image: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """The chunk's init latents under ``seeds``: what ``p.init`` encoded if it was this image,
        else encoded now."""
        p = run.p
        first_batch = run.position.video == 0 and run.position.chunk == 0
        if first_batch and getattr(p, "resize_mode", 0) != 3:  # mode 3 scales latents: encode anew
            for encoded in self._encoded:
                if encoded.image.shape == image.shape and torch.equal(encoded.image, image):
                    return encoded.latent
        return run.host.encode_init(p, image, seeds, mean=run.params.init_encoding == "mean")

    def batch(self, run: Run) -> None:
        p, host = run.p, run.host
        frames = self.source.chunk(run.position.first_frame, run.plan.batch_size)
        if getattr(p, "image_mask", None) is not None and getattr(p, "nmask", None) is not None:
            self._masked_batch(run, frames)
            return
        image = host.init_images_tensor(p, frames)
        seeds = [posterior_seed(seed) for seed in p.seeds]
        latent = self._encode(run, image, seeds)
        run.set_attribute(p, "init_latent", latent)
        conditioning = host.image_conditioning(p, image, latent, None, condition_seeds(seeds))
        run.set_attribute(p, "image_conditioning", conditioning)
        if getattr(p, "color_corrections", None) is not None:
            run.set_attribute(p, "color_corrections", [host.color_correction(frame) for frame in frames])

    def _masked_batch(self, run: Run, frames: list[Any]) -> None:
        """Inpainting: frame i under its mask, prepared and composited as A1111 does one init image."""
        p, host = run.p, run.host
        if self.source.masks is not None:
            raw = self.source.mask_chunk(run.position.first_frame, len(frames))
            blurred = [host.masks.blurred(p, mask) for mask in raw]
        else:
            if self._blurred is None:
                self._blurred = host.masks.blurred(p, p.image_mask)
            blurred = [self._blurred] * len(frames)
        masks = host.masks.prepare(p, frames, blurred, tuple(p.init_latent.shape))
        seeds = [posterior_seed(seed) for seed in p.seeds]
        latent = self._encode(run, masks.image, seeds)
        latent = host.masks.fill_latent(p, latent, masks, lambda: self._fill_noise(run, latent.shape))
        run.set_attribute(p, "init_latent", latent)
        run.set_attribute(p, "mask", masks.mask)
        run.set_attribute(p, "nmask", masks.nmask)
        run.set_attribute(p, "overlay_images", masks.overlays)
        conditioning = host.image_conditioning(
            p, masks.image, latent, masks.condition_mask, condition_seeds(seeds)
        )
        run.set_attribute(p, "image_conditioning", conditioning)
        if getattr(p, "color_corrections", None) is not None:
            run.set_attribute(p, "color_corrections", masks.corrections)

    def _fill_noise(self, run: Run, shape: tuple[int, ...]) -> torch.Tensor:
        """Masked content "latent noise": A1111 fills with each frame's seed noise, which is the
        frame's initial noise, so here the same dependency chain (paper §3), carried across chunks."""
        if run.position.chunk == 0:
            self._fill = PassNoise()
        base = run.host.seed_rng(shape[1:], [int(seed) for seed in run.p.seeds])
        return self._fill.rng(base, run, run.position.first_frame).next()

    def carried(self) -> list[torch.Tensor]:
        state = self._fill.state if self._fill is not None else None
        return [] if state is None else [state]
