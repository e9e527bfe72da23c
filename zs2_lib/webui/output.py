"""A run's videos: written next to the frames, shown in the results, returned over the API.

Both the page and API clients find the videos in the ``info`` JSON A1111 builds with
``processed.js()``, under ``names.API_KEY``: API responses carry each file's data; the page (whose
hidden ``generation_info_<tab>`` element holds that JSON) gets each file's path, which
``javascript/zs2_video.js`` plays. The additions to ``processed`` are the run's result, handed to
the caller; they are not host state and outlive the run on purpose.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zs2_lib.names import API_KEY, OUTPUT_FOLDER, PREFIX, console
from zs2_lib.video import VideoDependencyError, unique_basename, write_text, write_videos
from zs2_lib.video_input import carry_audio
from zs2_lib.webui.features.frames import Frames
from zs2_lib.webui.features.img2img import Img2ImgFrames
from zs2_lib.webui.run import Run

MIME_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif", "webp": "image/webp"}
GALLERY_FORMATS = ("gif", "webp")  # what gradio's Gallery can show; MP4 plays through javascript/


@dataclass(frozen=True)
class SavedVideo:
    """One video of a run: its files by format, and the infotext written with them."""

    video: int
    seed: int
    files: dict[str, Path]
    infotext: str


def deliver(run: Run, processed: Any) -> None:
    """Write every video of the run and hand it to the page or the API client; report what failed."""
    p = run.p
    frames = run.feature(Frames)
    directory = video_directory(p)
    temporary = directory is None
    if temporary:
        directory = Path(tempfile.mkdtemp(prefix="zs2-"))
    try:
        saved = write_run_videos(run, frames.videos, processed, directory)
        if getattr(p, "is_api", False):
            _add_to_info(processed, [_api_entry(video, fmt, path) for video, fmt, path in _files(saved)])
        elif not temporary:
            show_in_results(processed, saved)
    except (OSError, VideoDependencyError) as error:  # disk full, no permission, encoder failure
        message = f"the video could not be written: {error}"
        console(message)
        processed.comments = (processed.comments or "") + f"{PREFIX} {message}\n"
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    if run.plan.chunks > 1:
        console(f"state carried between chunks: {run.peak_carried / 2**20:.1f} MiB")
    if frames.incomplete:
        console(f"left out of the video: {len(frames.incomplete)} chunk(s) cut short by Interrupt or Skip")


def video_directory(p: Any) -> Path | None:
    """``<outpath_samples>/zs2``, or None when the request asked not to save images."""
    if getattr(p, "do_not_save_samples", False):
        return None
    return Path(p.outpath_samples) / OUTPUT_FOLDER


def write_run_videos(
    run: Run, videos: dict[int, list[Any]], processed: Any, directory: Path
) -> list[SavedVideo]:
    """Write each video's frames, with the infotext as comment and as a ``.txt`` beside it.

    A v2v run's MP4/WebM get its source's audio, cut to the frames used, unless ``keep_audio`` is off.
    """
    p, params, plan = run.p, run.params, run.plan
    source = next((f.source.video for f in run.features if isinstance(f, Img2ImgFrames)), None)
    saved = []
    for video, images in sorted(videos.items()):
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
        if source is not None:
            carry_audio(files, source, keep=params.keep_audio)
        write_text(directory / f"{basename}.txt", infotext)
        for path in files.values():
            console(f"wrote {path} ({len(images)} frames)")
        saved.append(SavedVideo(video, seed, files, infotext))
    return saved


def show_in_results(processed: Any, saved: list[SavedVideo]) -> None:
    """Append each video's GIF/WebP to the gallery, name its files below it, hand its paths to the page."""
    lines = []
    for video in saved:
        shown = next((video.files[f] for f in GALLERY_FORMATS if f in video.files), None)
        if shown is not None:
            processed.images.append(str(shown))
            processed.infotexts.append(video.infotext)
        lines += [f"{PREFIX} {path}" for path in video.files.values()]
    if lines:
        processed.comments = (processed.comments or "") + "\n".join(lines) + "\n"
    _add_to_info(processed, [_page_entry(video, fmt, path) for video, fmt, path in _files(saved)])


def _files(saved: list[SavedVideo]) -> list[tuple[SavedVideo, str, Path]]:
    """Every encoded file (not PNG folders) of the saved videos."""
    return [(video, fmt, path) for video in saved for fmt, path in video.files.items() if fmt in MIME_TYPES]


def _entry(video: SavedVideo, fmt: str) -> dict[str, Any]:
    return {"video": video.video, "seed": video.seed, "format": fmt, "mime_type": MIME_TYPES[fmt]}


def _page_entry(video: SavedVideo, fmt: str, path: Path) -> dict[str, Any]:
    """The page plays the file from the server's disk."""
    return {**_entry(video, fmt), "path": str(path)}


def _api_entry(video: SavedVideo, fmt: str, path: Path) -> dict[str, Any]:
    """An API client gets the file itself, so it never needs the server's disk."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return {**_entry(video, fmt), "filename": path.name, "data": data}


def _add_to_info(processed: Any, entries: list[dict[str, Any]]) -> None:
    """Put ``entries`` in the ``info`` JSON under ``API_KEY``.

    ``info`` is built by ``processed.js()`` after the scripts ran; this wraps that method on this
    result object only. PNG frames are not repeated there: they are the response's ``images``.
    """
    original_js = processed.js

    def js() -> str:
        info = json.loads(original_js())
        info[API_KEY] = entries
        return json.dumps(info)

    processed.js = js
