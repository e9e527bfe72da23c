"""The img2img feature on a fake ``p``: the source resolved before planning, per-chunk init latents, undo."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ParamError, ZS2Params
from zs2_lib.webui.features.img2img import Img2ImgFrames, InitFrames, posterior_seed, resolve
from zs2_lib.webui.run import Run


def frame(value: int) -> Image.Image:
    return Image.fromarray(np.full((8, 8, 3), value, np.uint8))


class FakeHost:
    """Encodes a frame to its mean colour plus its seed, so a latent names its frame and seed."""

    def __init__(self) -> None:
        self.encoded: list[int] = []  # frames encoded, by mean colour, in order

    @contextmanager
    def seeded_encoding(self, seeds: list[int], mean: bool) -> Iterator[list[Any]]:
        encoded: list[Any] = []

        def encode(image: torch.Tensor) -> torch.Tensor:
            latent = self.encode_init(None, image, seeds[: len(image)], mean)
            encoded.append(SimpleNamespace(image=image, latent=latent))
            return latent

        FakeImg2Img.encode = staticmethod(encode)
        try:
            yield encoded
        finally:
            FakeImg2Img.encode = staticmethod(global_rng_encode)

    def init_images_tensor(self, p: Any, frames: list[Image.Image]) -> torch.Tensor:
        return torch.stack(
            [torch.from_numpy(np.asarray(f, np.float32) / 255).permute(2, 0, 1) for f in frames]
        )

    def encode_init(self, p: Any, image: torch.Tensor, seeds: list[int], mean: bool) -> torch.Tensor:
        self.encoded += [round(float(img.mean() * 255)) for img in image]
        values = [
            float(img.mean() * 255) + (0 if mean else seed) for img, seed in zip(image, seeds, strict=True)
        ]
        return torch.tensor(values)

    def image_conditioning(
        self, p: Any, image: torch.Tensor, latent: torch.Tensor, mask: Any, seeds: list[int]
    ) -> str:
        return f"conditioning of {len(seeds)}"

    def color_correction(self, frame: Image.Image) -> int:
        return int(np.asarray(frame)[0, 0, 0])


class FailingHost(FakeHost):
    def encode_init(self, p: Any, image: torch.Tensor, seeds: list[int], mean: bool) -> torch.Tensor:
        raise RuntimeError("VAE failed")


def global_rng_encode(image: torch.Tensor) -> torch.Tensor:
    """A1111's own encoding: a posterior sample from the global RNG."""
    return torch.rand(len(image))


class FakeImg2Img:
    def __init__(self, images: list[Any]) -> None:
        self.init_images = images
        self.denoising_strength = 0.5
        self.image_mask = None
        self.color_corrections: list[int] | None = [0]
        self.init_latent = "A1111's"
        self.image_conditioning = "A1111's"
        self.seeds: list[int] = []

    encode = staticmethod(global_rng_encode)

    def init(self, all_prompts: list[str], all_seeds: list[int], all_subseeds: list[int]) -> None:
        """As A1111's: the init images through the module's encoder (which ``seeded_encoding`` swaps)."""
        self.init_latent = self.encode(FakeHost().init_images_tensor(self, self.init_images))

    def img2img_image_conditioning(self, image: torch.Tensor, latent: torch.Tensor, mask: Any) -> str:
        return f"conditioning of {len(latent)}"

    def close(self) -> None:
        pass


def run_for(p: FakeImg2Img, params: ZS2Params, source: InitFrames) -> tuple[Run, Img2ImgFrames]:
    feature = Img2ImgFrames(source)
    run = Run(p, FakeHost(), [feature], params=params, plan=ChunkPlan(params.frames, params.chunk))
    run.start()
    return run, feature


def test_each_chunk_gets_its_own_frames_encoded_under_their_seeds_and_the_last_chunk_repeats_the_end() -> (
    None
):
    p = FakeImg2Img([frame(10 * k) for k in range(5)])
    params, source = resolve(p, ZS2Params(enabled=True, chunk=3), frozenset())
    assert params.frames == 5
    run, _ = run_for(p, params, source)
    assert [np.asarray(f)[0, 0, 0] for f in p.init_images] == [0, 10, 20]  # p.init sees the first chunk
    for batch, (values, seeds) in enumerate(
        [([0, 10, 20], [100, 101, 102]), ([30, 40, 40], [103, 104, 105])]
    ):
        p.seeds = seeds
        run.begin_batch(batch)
        expected = [value + posterior_seed(seed) for value, seed in zip(values, seeds, strict=True)]
        assert p.init_latent.tolist() == pytest.approx(expected)
        assert p.image_conditioning == "conditioning of 3"
        assert p.color_corrections == values
    run.finish()
    assert (p.init_latent, p.image_conditioning, p.color_corrections) == ("A1111's", "A1111's", [0])
    assert [np.asarray(f)[0, 0, 0] for f in p.init_images] == [0, 10, 20, 30, 40]


def test_the_first_chunk_is_encoded_once_in_p_init_under_its_seeds_and_reused_by_its_batch() -> None:
    p = FakeImg2Img([frame(10 * k) for k in range(5)])
    params, source = resolve(p, ZS2Params(enabled=True, chunk=3), frozenset())
    run, _ = run_for(p, params, source)
    seeds = [100, 101, 102, 103, 104, 105]
    p.init(["prompt"] * 6, seeds, seeds)
    first = [value + posterior_seed(seed) for value, seed in zip([0, 10, 20], seeds[:3], strict=True)]
    assert p.init_latent.tolist() == pytest.approx(first)  # not the global RNG's sample
    assert run.host.encoded == [0, 10, 20]
    p.seeds = seeds[:3]
    run.begin_batch(0)
    assert p.init_latent.tolist() == pytest.approx(first)
    assert run.host.encoded == [0, 10, 20]  # reused, not encoded again
    p.seeds = seeds[3:]
    run.begin_batch(1)
    assert run.host.encoded == [0, 10, 20, 30, 40, 40]
    run.finish()
    assert FakeImg2Img.encode(torch.zeros(2, 3, 8, 8)).shape == (2,)  # A1111's encoder is back
    assert "init" not in vars(p)  # the wrap is undone


def test_the_posterior_mean_option_encodes_without_the_seed() -> None:
    p = FakeImg2Img([frame(5), frame(6)])
    params, source = resolve(p, ZS2Params(enabled=True, init_encoding="mean"), frozenset())
    run, _ = run_for(p, params, source)
    p.seeds = [7, 8]
    run.begin_batch(0)
    assert p.init_latent.tolist() == pytest.approx([5, 6])
    run.finish()


def test_posterior_seeds_differ_from_the_frame_seeds_and_stay_in_range() -> None:
    assert posterior_seed(1) != 1
    assert posterior_seed(2**64) < 2**63
    assert posterior_seed(-1) >= 0


def test_one_init_image_serves_every_frame_and_keeps_the_frames_setting() -> None:
    p = FakeImg2Img([frame(9)])
    params, source = resolve(p, ZS2Params(enabled=True, frames=6), frozenset({"frames"}))
    assert params.frames == 6
    assert len(source.chunk(0, 6)) == 6


def test_a_frames_value_given_by_the_request_must_match_the_init_images() -> None:
    p = FakeImg2Img([frame(k) for k in range(4)])
    with pytest.raises(
        ParamError, match=r"ZS² Video: Frames \(frames\): 16 disagrees with the 4 frames of init_images"
    ):
        resolve(p, ZS2Params(enabled=True), frozenset({"frames"}))
    assert resolve(p, ZS2Params(enabled=True), frozenset())[0].frames == 4  # left out, or from the UI


def test_a_mask_with_a_mask_video_and_two_sources_are_refused_naming_the_field(tmp_path: Path) -> None:
    masked = FakeImg2Img([frame(1)])
    masked.image_mask = frame(255)
    assert resolve(masked, ZS2Params(enabled=True, frames=3), frozenset())[0].frames == 3  # one mask: fine
    with pytest.raises(
        ParamError, match=r'ZS² Video: Mask video \(mask_video\): "mask_video and mask" both give masks'
    ):
        resolve(masked, ZS2Params(enabled=True, mask_video=str(tmp_path)), frozenset())
    both = FakeImg2Img([frame(1), frame(2)])
    with pytest.raises(ParamError, match=r"ZS² Video: Video input \(video\): "):
        resolve(both, ZS2Params(enabled=True, video=str(tmp_path)), frozenset())


def test_a_mask_video_gives_mask_k_to_frame_k_with_the_sources_start_and_step(tmp_path: Path) -> None:
    for k in range(8):
        frame(10 * k).save(tmp_path / f"m{k}.png")
    p = FakeImg2Img([frame(k) for k in range(3)])
    params, source = resolve(p, ZS2Params(enabled=True, mask_video=str(tmp_path), video_start=2), frozenset())
    assert params.frames == 3
    assert [int(mask[0, 0, 0]) for mask in source.masks] == [20, 30, 40]
    assert [np.asarray(mask)[0, 0, 0] for mask in source.mask_chunk(2, 3)] == [40, 40, 40]
    with pytest.raises(
        ParamError, match=r"ZS² Video: Mask video \(mask_video\): 2 masks are fewer than the 3 frames"
    ):
        resolve(p, ZS2Params(enabled=True, mask_video=str(tmp_path), video_start=6), frozenset())
    with pytest.raises(
        ParamError, match=r"ZS² Video: Mask video \(mask_video\): \S*missing\" is no file or folder"
    ):
        resolve(p, ZS2Params(enabled=True, mask_video=str(tmp_path / "missing")), frozenset())


def test_a_video_folder_sets_frames_and_fps_and_a_base64_video_is_deleted_by_the_undo(tmp_path: Path) -> None:
    for k in range(6):
        frame(20 * k).save(tmp_path / f"f{k}.png")
    p = FakeImg2Img([])
    params, source = resolve(
        p, ZS2Params(enabled=True, video=str(tmp_path), video_start=1, video_step=2), frozenset()
    )
    assert params.frames == 3
    assert [np.asarray(f)[0, 0, 0] for f in source.chunk(0, 3)] == [20, 60, 100]
    assert params.fps == ZS2Params().fps  # a folder has no fps of its own
    temporary = tmp_path / "upload.mp4"
    temporary.write_bytes(b"")
    run, _ = run_for(p, params, dataclasses.replace(source, temporary=temporary))
    run.finish()
    assert not temporary.exists()


def test_an_exception_in_a_chunk_leaves_p_as_it_was() -> None:
    p = FakeImg2Img([frame(k) for k in range(4)])
    params, source = resolve(p, ZS2Params(enabled=True, chunk=2), frozenset())
    run, _ = run_for(p, params, source)
    p.seeds = [0, 1]
    run.begin_batch(0)
    run.host = FailingHost()
    with pytest.raises(RuntimeError, match="VAE failed"):
        run.begin_batch(1)
    run.finish()
    assert (p.init_latent, p.image_conditioning, len(p.init_images)) == ("A1111's", "A1111's", 4)
