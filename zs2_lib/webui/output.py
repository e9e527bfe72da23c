"""A run's videos: written next to the frames, shown in the results, returned over the API.

Both the page and API clients find the videos in the ``info`` JSON A1111 builds with
``processed.js()``, under ``names.API_KEY``: API responses carry each file's data; the page (whose
hidden ``generation_info_<tab>`` element holds that JSON) gets each file's path, which
``javascript/zs2_video.js`` plays above the gallery and links through the webui's ``file=`` route.
The page's gallery shows only frames that are in a video; the results say how many were left out
and why, and name the files without the server's folders. The additions to ``processed`` are the
run's result, handed to the caller; they are not host state and outlive the run on purpose.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zs2_lib.audio import carry_audio
from zs2_lib.files import remove_stale_temporaries
from zs2_lib.interpolation import factor_for, frame_count
from zs2_lib.names import API_KEY, PREFIX, REPORT_KEY, console
from zs2_lib.video import unique_basename, write_text
from zs2_lib.webui.features.encoding import Encoding
from zs2_lib.webui.features.frames import Frames
from zs2_lib.webui.features.img2img import Img2ImgFrames
from zs2_lib.webui.run import Run

MIME_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif", "webp": "image/webp"}


@dataclass(frozen=True)
class SavedVideo:
    """One video of a run: its files by format, and the infotext written with them."""

    video: int
    seed: int
    files: dict[str, Path]
    infotext: str


def deliver(run: Run, processed: Any) -> None:
    """Write every video of the run, hand it to the page or the API client, and report on each.

    Every video gets a report entry (``REPORT_KEY`` in the info JSON): its frames, why it is shorter
    than asked, and any failure to write it, which also goes to the result's comments; a failure
    never stays in the console only.
    """
    p = run.p
    frames = run.feature(Frames)
    encoding = run.feature(Encoding)
    directory = encoding.directory
    collected = _collector(p)
    offset = len(collected.report)
    if not encoding.temporary:
        removed = remove_stale_temporaries(directory)
        if removed:
            console(f"removed {len(removed)} stale temporary file(s) of an earlier crash from {directory}")
    saved, reports = write_run_videos(run, frames, processed, offset)
    if getattr(p, "is_api", False):  # read now: a temporary folder goes with the run
        collected.videos += [_api_entry(video, fmt, path) for video, fmt, path in _files(saved)]
    elif not encoding.temporary:
        show_in_results(processed, saved, directory)
        collected.videos += [_page_entry(video, fmt, path) for video, fmt, path in _files(saved)]
    collected.report += reports
    lines = [f"{PREFIX} video {r['video']}: {r['frames']} of {r['requested']} frames: {r['reason']}"
             for r in reports if r["reason"]]  # fmt: skip
    if not getattr(p, "is_api", False):
        lines += leave_out_of_gallery(processed, frames.left_out, run)
    lines += [f"{PREFIX} video {r['video']}: {error}" for r in reports for error in r["errors"]]
    if lines:
        processed.comments = (processed.comments or "") + "\n".join(lines) + "\n"
    _attach(processed, collected)
    if run.plan.chunks > 1:
        console(f"state carried between chunks: {run.peak_carried / 2**20:.1f} MiB")


def write_run_videos(
    run: Run, frames: Frames, processed: Any, offset: int = 0
) -> tuple[list[SavedVideo], list[dict[str, Any]]]:
    """Write each video's frames, with the infotext as comment and as a ``.txt`` beside it.

    A v2v run's MP4/WebM get its source's audio, cut to the frames used, unless ``keep_audio`` is off.
    Returns the saved videos and one report entry per video of the run (numbered from ``offset``,
    so the cells of an X/Y/Z plot count on); a video that fails to write is reported, not raised.
    """
    p, params, plan = run.p, run.params, run.plan
    encoding = run.feature(Encoding)
    directory = encoding.directory
    source = next((f.source.video for f in run.features if isinstance(f, Img2ImgFrames)), None)
    saved, reports = [], []
    factor = factor_for(params.fps, params.interpolate, params.target_fps)
    for video in range(plan.videos):
        images = frames.videos.get(video, [])
        first = plan.first_image(video)
        seed = int(p.all_seeds[first]) if first < len(p.all_seeds) else int(p.seed)
        count, reason = frames.report(run, video)
        report = {"video": offset + video, "seed": seed, "requested": params.frames, "frames": count}
        report.update(interpolate=factor, fps=params.fps)
        report.update(reason=reason, errors=[])
        reports.append(report)
        if reason:
            console(f"video {offset + video}: {count} of {params.frames} frames: {reason}")
        if not images:
            continue
        try:
            infotext = processed.infotext(p, first)
            basename = unique_basename(directory, f"zs2-{seed}")
            pixels = np.stack([np.asarray(image.convert("RGB")) for image in images])
            files = encoding.write(run, video, pixels, basename, infotext)
            if source is not None:
                carry_audio(files, source, keep=params.keep_audio)
            write_text(directory / f"{basename}.txt", infotext)
        except Exception as error:  # disk full, no permission, an encoder's failure: reported
            message = f"the video could not be written: {type(error).__name__}: {error}"
            console(message)
            report["errors"].append(message)
            continue
        smooth = frame_count(len(images), factor, params.loop)
        for fmt, path in files.items():
            console(f"wrote {path} ({len(images) if fmt == 'png' else smooth} frames)")
        saved.append(SavedVideo(offset + video, seed, files, infotext))
    return saved, reports


def show_in_results(processed: Any, saved: list[SavedVideo], directory: Path) -> None:
    """Name each video's files below the results (file names and the folder's last parts, never the
    server's absolute path); the page's video panel plays and links them above the gallery."""
    shown = "/".join(directory.parts[-3:])
    lines = [
        f"{PREFIX} video {video.video} (seed {video.seed}) saved as "
        f"{', '.join(path.name for path in video.files.values())} in {shown}"
        for video in saved
    ]
    if lines:
        processed.comments = (processed.comments or "") + "\n".join(lines) + "\n"


def leave_out_of_gallery(processed: Any, left_out: list[Any], run: Run) -> list[str]:
    """Take the images no video holds out of the page's gallery (and their infotexts), so the gallery
    and the videos show the same frames; returns the lines that say so."""
    dropped = {id(image) for image in left_out}
    first = int(getattr(processed, "index_of_first_image", 0))
    keep = [i < first or id(image) not in dropped for i, image in enumerate(processed.images)]
    count = keep.count(False)
    if not count:
        return []
    processed.images = [image for image, kept in zip(processed.images, keep, strict=True) if kept]
    infotexts = getattr(processed, "infotexts", None)
    if infotexts is not None and len(infotexts) == len(keep):
        processed.infotexts = [text for text, kept in zip(infotexts, keep, strict=True) if kept]
    plan = run.plan
    spare = plan.chunks * plan.batch_size - run.params.frames
    why = (
        f"{plan.chunks} chunks of {plan.batch_size} make {spare} frame(s) more than the "
        f"{run.params.frames} asked for"
        if spare > 0 and not run.feature(Frames).cuts
        else "their chunk was cut short or came after one that was"
    )
    return [f"{PREFIX} {count} image(s) not in the video are left out of the gallery: {why}"]


def _files(saved: list[SavedVideo]) -> list[tuple[SavedVideo, str, Path]]:
    """Every encoded file (not PNG folders) of the saved videos."""
    return [(video, fmt, path) for video in saved for fmt, path in video.files.items() if fmt in MIME_TYPES]


def _entry(video: SavedVideo, fmt: str) -> dict[str, Any]:
    return {"video": video.video, "seed": video.seed, "format": fmt, "mime_type": MIME_TYPES[fmt]}


def _page_entry(video: SavedVideo, fmt: str, path: Path) -> dict[str, Any]:
    """The page plays the file from the server's disk (the webui's ``file=`` route) and names it."""
    return {**_entry(video, fmt), "path": str(path), "name": path.name}


def _api_entry(video: SavedVideo, fmt: str, path: Path) -> dict[str, Any]:
    """An API client gets the file itself, so it never needs the server's disk."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return {**_entry(video, fmt), "filename": path.name, "data": data}


@dataclass
class Collected:
    """The videos and reports of one request: one run, or every cell of an X/Y/Z plot."""

    request: Any
    videos: list[dict[str, Any]] = field(default_factory=list)
    report: list[dict[str, Any]] = field(default_factory=list)


_LAST: list[Collected] = []


def _collector(p: Any) -> Collected:
    """The request's collection: a script that runs ``process_images`` once per cell (X/Y/Z plot)
    copies ``p`` for each, and the copies share the request's ``script_args``; a new request has new
    ones. Only the last request's collection is kept."""
    request = getattr(p, "script_args", None)
    if _LAST and request is not None and _LAST[0].request is request:
        return _LAST[0]
    _LAST[:] = [Collected(request)]
    return _LAST[0]


def _attach(processed: Any, collected: Collected) -> None:
    """Make ``processed.js()`` (the ``info`` JSON) list the request's videos and reports.

    The result's class becomes a subclass whose ``js`` adds them to the host's own JSON; a copy of
    the result (the X/Y/Z plot's grid result is a copy of its first cell's) keeps both, and its own
    fields, so every cell's videos reach the response. PNG frames are not repeated there: they are
    the response's ``images``.
    """
    cls = type(processed)
    if not issubclass(cls, _VideoInfo):
        processed.__class__ = _with_video_info(cls)
    processed.zs2_collected = collected


class _VideoInfo:
    """Marks a result class made by :func:`_with_video_info`."""


_CLASSES: dict[type, type] = {}


def _with_video_info(cls: type) -> type:
    """``cls`` with a ``js`` that adds ``API_KEY`` and ``REPORT_KEY`` (one subclass per host class)."""
    if cls not in _CLASSES:

        def js(self: Any) -> str:
            info = json.loads(_host_js(cls, self))
            info[API_KEY] = self.zs2_collected.videos
            info[REPORT_KEY] = self.zs2_collected.report
            return json.dumps(info)

        _CLASSES[cls] = type(cls.__name__, (cls, _VideoInfo), {"js": js, "__module__": cls.__module__})
    return _CLASSES[cls]


def _host_js(cls: type, processed: Any) -> str:
    """The host's own ``js``, with the infotext's callables (ZS²'s per-frame seeds) shown as null.

    A1111 and Forge main serialise a callable in ``extra_generation_params`` as null; Forge Classic's
    ``js`` has no such default and would raise, so it is given a copy without them.
    """
    params = getattr(processed, "extra_generation_params", None)
    if not isinstance(params, dict) or not any(callable(value) for value in params.values()):
        return cls.js(processed)
    processed.extra_generation_params = {k: None if callable(v) else v for k, v in params.items()}
    try:
        return cls.js(processed)
    finally:
        processed.extra_generation_params = params
