"""What read_video says about files that are not (whole) videos, on real files made with ffmpeg."""

import os
import re
import subprocess
import sys

import pytest
from helpers import cut_short, ffmpeg, make_clip

from dfdc.errors import DfdcError
from dfdc.video.files import file_problem, listed_videos
from dfdc.video.read import read_video


@pytest.fixture(scope="module")
def media(sample_dir, tmp_path_factory):
    """Real inputs: a 4 s faststart clip and its first half, an audio-only mp4, a DFDC video cut in
    half (its index is at the end), a text file named .mp4."""
    root = tmp_path_factory.mktemp("media")
    source = sample_dir / "knqhpwoigk.mp4"
    clip = make_clip(source, root / "clip.mp4", seconds=4, width=320)
    ffmpeg("-i", source, "-vn", "-c:a", "copy", root / "audio.mp4")
    (root / "text.mp4").write_text("a text file, named like a video\n")
    return {"clip": clip, "half": cut_short(clip, root / "half.mp4", 0.5), "audio": root / "audio.mp4",
            "damaged": cut_short(source, root / "damaged.mp4", 0.5), "text": root / "text.mp4"}


@pytest.mark.parametrize("name,kind,words", [
    ("audio", "no video stream", "no video stream (only audio)"),
    ("text", "cannot decode", "not a video file"),
    ("damaged", "cannot decode", "a damaged MP4"),
])
def test_each_unreadable_file_has_its_reason(media, name, kind, words):
    with pytest.raises(DfdcError) as e:
        read_video(media[name], 8)
    assert e.value.kind == kind and words in str(e.value) and str(media[name]) in str(e.value)
    assert "\n" not in str(e.value)


def test_a_cut_short_video_gives_the_frames_before_the_cut_and_says_so(media):
    whole = read_video(media["clip"], 8)
    assert not whole.partial and len(whole.indices) == 8
    assert whole.decoded() == "decoded 8 of 8 sampled frames, up to 4.0 s of 4 s"
    half = read_video(media["half"], 8)
    assert half.partial and 2 <= len(half.indices) < 8 and half.stopped
    m = re.fullmatch(r"decoded (\d) of 8 sampled frames, up to ([\d.]+) s of 4 s", half.decoded())
    assert m and int(m.group(1)) == len(half.indices) and 0.5 < float(m.group(2)) < 3.5
    assert (half.frames == whole.frames[:len(half.indices)]).all()  # the same frames, up to the cut


def test_file_problems_are_named_without_opening_a_decoder(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "broken.mp4").symlink_to(tmp_path / "gone.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo.mp4")  # opening it would block: it must be named, never opened
    assert file_problem(tmp_path / "dir.mp4") == ("not a file", "a folder, not a video file")
    assert file_problem(tmp_path / "broken.mp4")[0] == "broken link"
    assert file_problem(tmp_path / "empty.mp4") == ("empty file", "empty file (0 bytes)")
    assert file_problem(tmp_path / "fifo.mp4")[0] == "not a file"
    assert file_problem(tmp_path / "none.mp4") == ("no such file", "no such file")
    with pytest.raises(DfdcError) as e:
        read_video(tmp_path / "fifo.mp4")
    assert e.value.kind == "not a file"


def test_listed_names_match_files_whose_suffix_differs_in_case(tmp_path):
    for name in ("a.MP4", "b.mp4", "C.Mp4"):
        (tmp_path / name).write_bytes(b"x")
    found = listed_videos(tmp_path, ["a.mp4", "b.mp4", "c.mp4", "C.mp4", "d.mp4"])
    assert found == {"a.mp4": tmp_path / "a.MP4", "b.mp4": tmp_path / "b.mp4", "C.mp4": tmp_path / "C.Mp4"}


def test_the_decoders_print_nothing_of_their_own(media):
    """The libraries' own messages ("moov atom not found") never reach the screen."""
    code = ("import sys\nfrom dfdc.video.read import read_video\n"
            "for p in sys.argv[1:]:\n    try: read_video(p, 8)\n    except Exception as e: print(e)")
    files = [media[k] for k in ("text", "damaged", "audio", "half")]
    done = subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert len(done.stdout.splitlines()) == 3  # text, damaged, audio: one line each; half decodes
