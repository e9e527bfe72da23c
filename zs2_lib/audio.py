"""The source video's audio in the output: :func:`carry_audio` copies the track, cut to the frames read.

The video stream is copied, never re-encoded; MP4 gets AAC, WebM Opus; ffmpeg from imageio-ffmpeg.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from zs2_lib import ffmpeg
from zs2_lib.video_input import VideoFrames

_AUDIO_CODECS = {".mp4": "aac", ".webm": "libopus"}


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether the file has an audio stream (ffmpeg's stream listing)."""
    return bool(re.search(r"Stream #\d+:\d+.*: Audio:", ffmpeg.describe(path)))


def add_audio(video: Path, source: Path, start: float, duration: float) -> bool:
    """Put ``source``'s audio from ``start`` for ``duration`` seconds into ``video`` (MP4 or WebM), in place.

    The video stream is copied, not re-encoded; the file is replaced atomically. Returns False (and
    leaves ``video`` as it is) when the source has no audio or the format carries none.

    Raises:
        OSError: ffmpeg failed.
    """
    codec = _AUDIO_CODECS.get(video.suffix.lower())
    if codec is None or not has_audio(source):
        return False
    temporary = video.with_name(f".{video.stem}.audio{video.suffix}")
    command = [
        "-loglevel", "error", "-y", "-i", str(video),
        "-ss", f"{start:.6f}", "-t", f"{duration:.6f}", "-i", str(source),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", codec, "-shortest", str(temporary),
    ]  # fmt: skip
    result = ffmpeg.run(command)
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        raise OSError(
            f"ffmpeg could not add the audio of {source.name} to {video.name}: {result.stderr.strip()}"
        )
    os.replace(temporary, video)
    return True


def carry_audio(files: dict[str, Path], source: VideoFrames, keep: bool = True) -> list[Path]:
    """Add the source's audio, cut to the frames read, to each MP4/WebM of ``files``; the files changed.

    Nothing is done when ``keep`` is False, the source is a folder or has no fps, or it has no audio.
    """
    span = source.span_seconds()
    if not keep or source.path is None or span is None:
        return []
    return [
        path for fmt, path in files.items() if fmt in ("mp4", "webm") and add_audio(path, source.path, *span)
    ]


__all__ = ["add_audio", "carry_audio", "has_audio"]
