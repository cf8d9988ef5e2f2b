"""Frame sampling and decoding on the real DFDC videos."""

import numpy as np
import pytest
from helpers import write_video

from dfdc.errors import DfdcError
from dfdc.video.read import FrameBuffer, read_video
from dfdc.video.sampling import even_indices, train_indices


def test_even_indices_cover_the_video():
    idx = even_indices(300, 32)
    assert len(idx) == 32 and idx[0] == 0 and idx[-1] == 299
    assert np.all(np.diff(idx) > 0)
    assert list(even_indices(5, 32)) == [0, 1, 2, 3, 4]


def test_train_indices_start_in_first_half_every_second_frame():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = train_indices(300, 10, rng)
        assert 0 <= idx[0] <= 150 and np.all(np.diff(idx) == 2) and len(idx) == 10
    short = train_indices(12, 10, rng)
    assert short[-1] <= 11 and len(short) >= 6


@pytest.mark.parametrize("name,size", [("abofeumbvv.mp4", (1920, 1080)), ("yhffcuhhjy.mp4", (720, 1280))])
def test_reads_dfdc_video_upright_with_true_indices(sample_dir, name, size):
    video = read_video(sample_dir / name, 32)
    assert video.size == size  # the portrait video stays portrait
    assert video.frames.dtype == np.uint8 and video.frames.shape == (32, size[1], size[0], 3)
    assert 29.9 < video.fps < 30.1 and video.total in (300, 301)
    wanted = even_indices(video.total, 32)
    # NONREF decoding gives the nearest later reference frame: never more than 2 frames off
    assert np.all((video.indices - wanted >= 0) & (video.indices - wanted <= 2))


def test_training_strategy_reads_consecutive_every_second_frame(sample_dir):
    video = read_video(sample_dir / "knqhpwoigk.mp4", 10, "train", np.random.default_rng(3))
    assert len(video.indices) == 10
    assert np.all(np.isin(np.diff(video.indices), [1, 2, 3]))


def test_reads_into_one_buffer_video_after_video_with_one_decoder_thread(sample_dir):
    """Predict's workers decode into one buffer each, with their share of the cores: every video read
    so gives the frames a fresh read gives, a landscape after a portrait one and back (the memory
    grown, then reused, never a second allocation of the same size)."""
    buffer = FrameBuffer()
    names = ["yhffcuhhjy.mp4", "abofeumbvv.mp4", "knqhpwoigk.mp4", "yhffcuhhjy.mp4"]
    memory = []
    for name in names:
        want = read_video(sample_dir / name, 8)
        got = read_video(sample_dir / name, 8, threads=1, buffer=buffer)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.frames, want.frames)
        memory.append(got.frames)
    assert not np.shares_memory(memory[0], memory[1])  # 1080p needs more than the portrait 720p had
    assert np.shares_memory(memory[1], memory[2]) and np.shares_memory(memory[2], memory[3])
    # the memory is the next video's: the first 1080p video's frames hold later videos' pixels now
    assert not np.array_equal(memory[1], read_video(sample_dir / names[1], 8).frames)


def test_frames_match_a_full_opencv_decode(sample_dir):
    """The fast path must return the pixels of the frame it names, not a neighbour."""
    import cv2

    path = sample_dir / "anndvqgoko.mp4"
    video = read_video(path, 4)
    cap = cv2.VideoCapture(str(path))
    frames = []
    for _ in range(video.indices[1] + 1):
        ok, bgr = cap.read()
        frames.append(bgr)
    cap.release()
    reference = cv2.cvtColor(frames[video.indices[1]], cv2.COLOR_BGR2RGB).astype(int)
    neighbour = cv2.cvtColor(frames[video.indices[1] - 1], cv2.COLOR_BGR2RGB).astype(int)
    mine = video.frames[1].astype(int)
    assert np.abs(mine - reference).mean() < 3.0
    assert np.abs(mine - reference).mean() < np.abs(mine - neighbour).mean()


def test_single_frame_video(tmp_path):
    path = write_video(tmp_path / "one.mp4", [np.full((64, 96, 3), 100, np.uint8)])
    video = read_video(path, 32)
    assert video.frames.shape == (1, 64, 96, 3) and list(video.indices) == [0]


@pytest.mark.parametrize("content,message", [(b"", "empty file"), (b"hello, not a video\n" * 10, "not a video file")])
def test_bad_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(DfdcError) as e:
        read_video(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_truncated_video_is_an_error_or_a_shorter_read(sample_dir, tmp_path):
    data = (sample_dir / "knqhpwoigk.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DfdcError) as e:
        read_video(cut)
    assert str(cut) in str(e.value)


def _stream_that_shrinks(path, tmp_path):
    """One MPEG-TS stream of 30 dark 320x240 frames, then 30 light 160x128 ones (a broadcast
    recording that changes resolution), remuxed from two encodes with continuous timestamps."""
    import av

    from dfdc.video.write import video_codec

    parts = []
    for k, (w, h, shade) in enumerate([(320, 240, 60), (160, 128, 180)]):
        parts.append(av.open(str(tmp_path / f"part{k}.ts"), "w", format="mpegts"))
        s = parts[-1].add_stream(video_codec(), rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(30):
            parts[-1].mux(s.encode(av.VideoFrame.from_ndarray(np.full((h, w, 3), shade, np.uint8), format="rgb24")))
        parts[-1].mux(s.encode())
        parts[-1].close()
    with av.open(str(path), "w", format="mpegts") as out:
        stream, shift = None, 0
        for k in range(2):
            with av.open(str(tmp_path / f"part{k}.ts")) as part:
                source = part.streams.video[0]
                stream = stream or out.add_stream_from_template(source)
                last = 0
                for packet in part.demux(source):
                    if packet.dts is None:
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    last = max(last, packet.pts)
                    packet.stream = stream
                    out.mux(packet)
                shift = last + round(1 / (30 * source.time_base))
    return path


def test_a_stream_that_changes_resolution_is_read_at_its_first_size(tmp_path):
    video = read_video(_stream_that_shrinks(tmp_path / "shrinks.ts", tmp_path), 8)
    assert video.frames.shape == (8, 240, 320, 3) and not video.partial
    later = video.indices >= 30  # the 160x128 half, resized to the first half's size
    assert later.sum() >= 3 and (~later).sum() >= 3
    assert np.all(np.abs(video.frames[later].astype(int) - 180).max(axis=(1, 2, 3)) < 12)
    assert np.all(np.abs(video.frames[~later].astype(int) - 60).max(axis=(1, 2, 3)) < 12)
