"""`dfdc faces` end to end: files written and read back, and one-line errors for bad input."""

import json
import shutil

import cv2
import pytest
from helpers import add_bad_videos

from dfdc.cli import main


@pytest.fixture
def bad_videos(tmp_path, sample_dir):
    add_bad_videos(tmp_path / "videos", sample_dir)
    return tmp_path / "videos"


def _one_line_errors(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.startswith("dfdc:")]
    assert "Traceback" not in err
    return lines


def test_faces_writes_crops_json_and_contact_sheet(sample_dir, tmp_path, weights_dir, capsys):
    out = tmp_path / "faces"
    code = main(["faces", str(sample_dir / "yhffcuhhjy.mp4"), "--out", str(out), "--frames", "8",
                 "--size", "96", "--weights", str(weights_dir)])
    assert code == 0
    folder = out / "yhffcuhhjy"
    data = json.loads((folder / "faces.json").read_text())
    assert (data["width"], data["height"]) == (720, 1280) and len(data["sampled_frames"]) == 8
    main_track = data["tracks"][0]
    assert data["dropped_tracks"] == []  # tracks left out (not a face, or weak), with the reason
    crops = sorted((folder / "crops").glob("t00_*.png"))
    assert len(crops) == len(main_track["frames"]) >= 7
    assert cv2.imread(str(crops[0])).shape == (96, 96, 3)
    for box in main_track["boxes"]:
        assert 0 <= box[0] < box[2] <= 720 and 0 <= box[1] < box[3] <= 1280
    sheet = cv2.imread(str(folder / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] > 96


@pytest.mark.parametrize("name,problem", [("empty.mp4", "empty file"), ("text.mp4", "cannot open"),
                                          ("truncated.mp4", "truncated"), ("noface.mp4", "no face")])
def test_a_bad_single_file_is_one_line_and_a_nonzero_exit(bad_videos, tmp_path, weights_dir, capsys, name, problem):
    code = main(["faces", str(bad_videos / name), "--out", str(tmp_path / "out"), "--frames", "4",
                 "--weights", str(weights_dir)])
    lines = _one_line_errors(capsys.readouterr().err)
    assert code != 0
    assert len(lines) == 1 and name in lines[0] and problem in lines[0]


def test_a_folder_run_processes_the_good_videos_past_the_bad(bad_videos, sample_dir, tmp_path, weights_dir, capsys):
    (bad_videos / "knqhpwoigk.mp4").symlink_to(sample_dir / "knqhpwoigk.mp4")
    out = tmp_path / "out"
    code = main(["faces", str(bad_videos), "--out", str(out), "--frames", "4", "--weights", str(weights_dir)])
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads((out / "knqhpwoigk" / "faces.json").read_text())["tracks"]
    warned = _one_line_errors(captured.err)
    for bad in ("empty.mp4", "text.mp4", "truncated.mp4", "noface.mp4"):
        assert sum(bad in line for line in warned) == 1


def test_missing_weights_and_wrong_checksum(sample_dir, tmp_path, weights_dir, capsys):
    empty = tmp_path / "no_weights"
    empty.mkdir()
    args = ["faces", str(sample_dir / "knqhpwoigk.mp4"), "--out", str(tmp_path / "out"), "--frames", "4"]
    assert main(args + ["--weights", str(empty)]) == 2
    line, = _one_line_errors(capsys.readouterr().err)
    assert "blazeface.pth" in line and "not found" in line

    wrong = tmp_path / "wrong"
    shutil.copytree(weights_dir / "blazeface", wrong)
    (wrong / "blazeface.pth").chmod(0o644)
    with open(wrong / "blazeface.pth", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    assert main(args + ["--weights", str(wrong)]) == 2
    line, = _one_line_errors(capsys.readouterr().err)
    assert str(wrong / "blazeface.pth") in line and "wrong checksum" in line
