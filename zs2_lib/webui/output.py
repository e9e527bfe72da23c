"""Writing a run's videos, showing them in the result area, and returning them over the API."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ZS2Params
from zs2_lib.video import unique_basename, write_text, write_videos
from zs2_lib.webui.runtime import PREFIX

MIME_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif", "webp": "image/webp"}
GALLERY_FORMATS = ("gif", "webp")  # what gradio's Gallery can show; MP4 plays through javascript/
API_KEY = "zs2_videos"
"""Key of the list of encoded videos in the API response's ``info`` JSON."""


@dataclass(frozen=True)
class SavedVideo:
    """One video of a run: its files by format, and the infotext written with them."""

    video: int
    seed: int
    files: dict[str, Path]
    infotext: str


def video_directory(p: Any) -> Path | None:
    """``<outpath_samples>/zs2``, or None when the request asked not to save images."""
    if getattr(p, "do_not_save_samples", False):
        return None
    return Path(p.outpath_samples) / "zs2"


def write_run_videos(
    p: Any,
    params: ZS2Params,
    plan: ChunkPlan,
    frames: dict[int, list[Any]],
    processed: Any,
    directory: Path,
) -> list[SavedVideo]:
    """Write each video's frames, with the infotext as comment and as a ``.txt`` beside it."""
    saved = []
    for video, images in sorted(frames.items()):
        if not images:
            continue
        first = video * plan.chunks * plan.batch_size
        seed = int(p.all_seeds[first]) if first < len(p.all_seeds) else int(p.seed)
        infotext = processed.infotext(p, first)
        basename = unique_basename(directory, f"zs2-{seed}")
        files = write_videos(
            np.stack([np.asarray(image.convert("RGB")) for image in images]),
            directory,
            basename,
            params.formats,
            fps=params.fps,
            loop=params.loop,
            comment=infotext,
        )
        write_text(directory / f"{basename}.txt", infotext)
        for path in files.values():
            print(f"{PREFIX} wrote {path} ({len(images)} frames)")
        saved.append(SavedVideo(video, seed, files, infotext))
    return saved


def show_in_results(processed: Any, saved: list[SavedVideo]) -> None:
    """Append each video's GIF/WebP to the gallery and name its files in the info below it."""
    lines = []
    for video in saved:
        shown = next((video.files[f] for f in GALLERY_FORMATS if f in video.files), None)
        if shown is not None:
            processed.images.append(str(shown))
            processed.infotexts.append(video.infotext)
        lines += [f"{PREFIX} {path}" for path in video.files.values()]
    if lines:
        processed.comments = (processed.comments or "") + "\n".join(lines) + "\n"


def attach_to_api_response(processed: Any, saved: list[SavedVideo]) -> None:
    """Put the encoded videos in the API response's ``info`` JSON, under ``"zs2_videos"``.

    ``info`` is built by ``processed.js()`` after the scripts ran; this wraps that method on this
    result object only. PNG frames are not repeated there: they are the response's ``images``.
    """
    entries = [
        {
            "video": video.video,
            "seed": video.seed,
            "format": fmt,
            "mime_type": MIME_TYPES[fmt],
            "filename": path.name,
            "data": base64.b64encode(path.read_bytes()).decode("ascii"),
        }
        for video in saved
        for fmt, path in video.files.items()
        if fmt in MIME_TYPES
    ]
    original_js = processed.js

    def js() -> str:
        info = json.loads(original_js())
        info[API_KEY] = entries
        return json.dumps(info)

    processed.js = js


def temporary_directory() -> Path:
    """A private directory for videos of a request that saves nothing (removed after encoding)."""
    return Path(tempfile.mkdtemp(prefix="zs2-"))


def remove_directory(path: Path) -> None:
    """Remove a temporary video directory."""
    shutil.rmtree(path, ignore_errors=True)
