"""What encoding adds to a run's end: MP4/WebM streamed while frames arrive vs written at the end.

A GPU run hands its frames over one by one (A1111 decodes, post-processes and saves each) while
the CPU is mostly idle. This replays that without a webui: ``F`` frames (a moving pattern, 512²)
arrive ``--interval`` seconds apart, the way a run's frames do; then the video is written. Printed
per format set: the time from the last frame to the files being in place ("after the last frame"),
streamed (:class:`zs2_lib.video_stream.VideoStream`) and written at the end
(:func:`zs2_lib.video.write_videos`), medians of ``--rounds`` interleaved rounds.

Usage: ``python benchmarks/bench_encoding.py [--frames 16] [--size 512] [--interval 0.06] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zs2_lib.video import write_videos
from zs2_lib.video_stream import VideoStream

FORMAT_SETS = (("mp4",), ("webm",), ("mp4", "gif"))


def moving_frames(count: int, size: int) -> np.ndarray:
    """Smooth colour waves drifting across the frame: uint8 [count, size, size, 3]."""
    t = np.arange(count)[:, None, None] / count
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [127.5 + 110 * np.sin(2 * np.pi * (k * x + y + t)) for k in (1, 2, 3)]
    return np.stack(np.broadcast_arrays(*channels), axis=-1).round().astype(np.uint8)


def after_last_frame(frames: np.ndarray, formats: tuple[str, ...], interval: float, stream: bool) -> float:
    """Seconds from the last frame's arrival to the written files."""
    directory = Path(tempfile.mkdtemp(prefix="zs2-bench-encoding-"))
    video = VideoStream(directory, formats, fps=8, loop="loop") if stream else None
    for frame in frames:
        time.sleep(interval)  # the webui finishing the next frame
        if video is not None:
            video.add(frame)
    started = time.perf_counter()
    if video is not None:
        video.finish(frames, "v", formats, "comment")
    else:
        write_videos(frames, directory, "v", formats, fps=8, loop="loop", comment="comment")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--interval", type=float, default=0.06, help="seconds between frames")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    frames = moving_frames(args.frames, args.size)
    print(f"{args.frames} frames of {args.size}², one every {args.interval} s; medians of {args.rounds}")
    print()
    print("| formats | written at the end: s after the last frame | streamed: s after the last frame |")
    print("|---|---|---|")
    for formats in FORMAT_SETS:
        times: dict[bool, list[float]] = {False: [], True: []}
        for round_number in range(args.rounds):
            for stream in (True, False) if round_number % 2 else (False, True):
                times[stream].append(after_last_frame(frames, formats, args.interval, stream))
        end, streamed = (statistics.median(times[stream]) for stream in (False, True))
        print(f"| {' + '.join(formats)} | {end:.3f} | {streamed:.3f} |")


if __name__ == "__main__":
    main()
