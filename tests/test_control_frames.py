"""Control videos read from every form users give them, frame counts checked before sampling."""

from __future__ import annotations

import base64
import io

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from zs2_lib.control_frames import ControlVideoError, in_memory, natural_key, open_control_video


def frame(i: int, size: int = 32) -> np.ndarray:
    """A two-colour frame that differs with i (exact through PNG and GIF)."""
    y, x = np.mgrid[0:size, 0:size]
    on = (np.abs(x - 3 * i) < 4) | ((y // 4 + i) % 5 == 0)
    return np.repeat((on * 255).astype(np.uint8)[..., None], 3, axis=2)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FRAMES = [frame(i) for i in range(12)]


def test_a_folder_is_read_in_natural_order_one_frame_at_a_time(tmp_path):
    for i, image in enumerate(FRAMES):
        (tmp_path / f"f{i}.png").write_bytes(png_bytes(image))
    (tmp_path / "notes.txt").write_text("not a frame")
    video = open_control_video(str(tmp_path), field="control_video")
    assert video.count == 12
    assert video.name == f'folder "{tmp_path.name}" (12 frames)'
    for i in (0, 2, 10, 11):  # f10 after f9, not after f1
        assert np.array_equal(video.frame(i), FRAMES[i])
    assert sorted(["f10", "f9", "f1"], key=natural_key) == ["f1", "f9", "f10"]


def test_base64_frames_data_urls_and_an_animated_gif_give_the_same_frames():
    listed = open_control_video([b64(png_bytes(f)) for f in FRAMES], field="control_video")
    urls = open_control_video(["data:image/png;base64," + b64(png_bytes(f)) for f in FRAMES], field="x")
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in FRAMES]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    gif = open_control_video(b64(buffer.getvalue()), field="control_video")
    assert listed.count == urls.count == gif.count == 12
    assert listed.name == "12 base64 frames"
    assert gif.name == "base64 video (12 frames)"
    for i in range(12):
        assert np.array_equal(listed.frame(i), FRAMES[i])
        assert np.array_equal(urls.frame(i), FRAMES[i])
        assert np.array_equal(gif.frame(i), FRAMES[i])


def test_a_base64_mp4_and_a_video_file_are_decoded_frame_by_frame(tmp_path):
    moving = [np.full((32, 32, 3), 20 * i, dtype=np.uint8) for i in range(10)]
    data = iio.imwrite("<bytes>", np.stack(moving), extension=".mp4", plugin="FFMPEG", fps=8)
    from_data = open_control_video(b64(data), field="control_video")
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    from_file = open_control_video(str(path), field="control_video")
    assert from_data.count == from_file.count == 10
    assert from_file.name == 'video "clip.mp4" (10 frames)'
    for i in range(10):
        assert np.array_equal(from_data.frame(i), from_file.frame(i))
        assert abs(float(from_data.frame(i).mean()) - 20 * i) < 4  # lossy, but frame i is frame i


def test_a_short_video_stops_unless_its_last_frame_is_held_and_never_loops():
    video = open_control_video([b64(png_bytes(f)) for f in FRAMES[:5]], field="control_videos[1]")
    with pytest.raises(ControlVideoError) as error:
        video.check_length(8, hold_last=False, field="control_videos[1]")
    message = str(error.value)
    assert message.startswith("control_videos[1]: ")
    assert "5 frames for a video of 8 frames" in message
    assert "hold_last" in message
    assert "holds its last frame" in video.check_length(8, hold_last=True, field="control_video")
    assert [video.index(i, hold_last=True) for i in range(8)] == [0, 1, 2, 3, 4, 4, 4, 4]
    with pytest.raises(IndexError):
        video.index(5, hold_last=False)
    assert video.check_length(5, hold_last=False, field="control_video") is None
    assert "first 3" in video.check_length(3, hold_last=False, field="control_video")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("", "is empty"),
        ([], "one non-empty"),
        (["", "x"], "one non-empty"),
        ("/no/such/folder", "is not a folder or file"),
        ("@@not base64@@", "neither a path"),
        (b64(b"definitely not media"), "cannot be read"),
        ([b64(b"not an image either")], "cannot be read"),
    ],
)
def test_unreadable_control_videos_name_the_field(entry, problem):
    with pytest.raises(ControlVideoError) as error:
        open_control_video(entry, field="control_video")
    assert str(error.value).startswith("control_video")
    assert problem in str(error.value)


def test_an_empty_folder_is_refused(tmp_path):
    with pytest.raises(ControlVideoError, match="holds no image"):
        open_control_video(str(tmp_path), field="control_video")


def test_frames_in_memory_are_a_control_video_of_arrays_or_pil_images():
    video = in_memory("img2img source", [FRAMES[0], Image.fromarray(FRAMES[1]).convert("L")])
    assert video.name == "img2img source (2 frames)"
    assert np.array_equal(video.frame(0), FRAMES[0])
    assert np.array_equal(video.frame(1), FRAMES[1])  # a grey PIL image comes back as RGB
    assert np.array_equal(video.frame(5, hold_last=True), FRAMES[1])
