import math
import os
from pathlib import Path

import pandas as pd
import pytest

from dfdc.errors import DfdcError
from dfdc.inference.submission import (
    check_submission,
    submission_names,
    write_submission,
)

VIDEOS = ["aaa.mp4", "bbb.mp4", "ccc.mp4", "ddd.mp4"]


@pytest.fixture
def videos_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "test_videos"
    folder.mkdir()
    for name in reversed(VIDEOS):
        (folder / name).write_bytes(b"")
    (folder / "metadata.json").write_text("{}")  # not a video
    return folder


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample_submission.csv"
    order = ["ccc.mp4", "aaa.mp4", "ddd.mp4", "bbb.mp4"]
    pd.DataFrame({"filename": order, "label": 0.5}).to_csv(path, index=False)
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- write_submission -----------------------------------------------------------------


def test_writes_every_name_in_order_with_the_prior_for_gaps(tmp_path: Path) -> None:
    scores = {"bbb.mp4": 0.25, "aaa.mp4": 1e-7, "ccc.mp4": math.nan, "zzz.mp4": 0.9, "eee.mp4": 1.2}
    names = ["ddd.mp4", "ccc.mp4", "bbb.mp4", "aaa.mp4", "eee.mp4", "fff.mp4"]
    path = write_submission(tmp_path / "out" / "submission.csv", scores, names, prior=0.4)
    text = path.read_text()
    assert text.splitlines()[0] == "filename,label"
    df = pd.read_csv(path)
    assert df["filename"].tolist() == names  # zzz.mp4 is not asked for
    assert df["label"].tolist() == [0.4, 0.4, 0.25, 1e-7, 1.0, 0.4]  # missing, NaN -> prior; 1.2 -> 1
    assert os.listdir(path.parent) == ["submission.csv"]


def test_infinite_and_none_scores_get_the_prior(tmp_path: Path) -> None:
    scores = {"a.mp4": math.inf, "b.mp4": None, "c.mp4": -math.inf}
    path = write_submission(tmp_path / "s.csv", scores, ["a.mp4", "b.mp4", "c.mp4"])
    assert pd.read_csv(path)["label"].tolist() == [0.5, 0.5, 0.5]


def test_written_file_passes_the_check(tmp_path: Path, videos_dir: Path, sample: Path) -> None:
    names = submission_names(None, sample)
    path = write_submission(tmp_path / "submission.csv", {"aaa.mp4": 0.1, "ddd.mp4": 0.99}, names)
    assert check_submission(path, videos_dir) == []
    assert check_submission(path, sample_submission=sample) == []
    assert check_submission(path) == []


def test_interrupted_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_submission(tmp_path / "submission.csv", {}, VIDEOS)
    old = path.read_bytes()

    def names_then_crash():
        yield "aaa.mp4"
        yield "bbb.mp4"
        raise KeyboardInterrupt  # the kernel stopped mid-way

    with pytest.raises(KeyboardInterrupt):
        write_submission(path, {"aaa.mp4": 0.9, "bbb.mp4": 0.9}, names_then_crash())
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["submission.csv"]  # no temp file left behind


def test_replaces_the_old_file_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "submission.csv", "filename,label\n" + "old.mp4,0.5\n" * 100)
    write_submission(path, {"aaa.mp4": 0.75}, ["aaa.mp4"])
    assert path.read_text() == "filename,label\naaa.mp4,0.75\n"


def test_bad_prior_is_refused_before_touching_the_file(tmp_path: Path) -> None:
    with pytest.raises(DfdcError, match="prior must be in"):
        write_submission(tmp_path / "s.csv", {}, ["a.mp4"], prior=1.5)
    assert not (tmp_path / "s.csv").exists()


# --- submission_names -----------------------------------------------------------------


def test_names_from_the_folder_are_the_sorted_mp4s(videos_dir: Path) -> None:
    assert submission_names(videos_dir) == VIDEOS


def test_names_from_the_sample_submission_keep_its_order(videos_dir: Path, sample: Path) -> None:
    assert submission_names(videos_dir, sample) == ["ccc.mp4", "aaa.mp4", "ddd.mp4", "bbb.mp4"]


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "file not found"),
        ("", "file is empty"),
        ("name,label\naaa.mp4,0.5\n", "no 'filename' column"),
        ("filename,label\n", "lists no videos"),
        ("filename,label\naaa.mp4,0.5,1\n", "line 2 has 3 fields, expected 2"),
    ],
)
def test_broken_sample_submission_names_the_file(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "sample_submission.csv"
    if text is not None:
        write(path, text)
    with pytest.raises(DfdcError, match=message) as info:
        submission_names(None, path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_repeated_sample_row_is_one_row_and_one_warning(tmp_path: Path, caplog) -> None:
    path = tmp_path / "sample_submission.csv"
    write(path, "filename,label\nbbb.mp4,0.5\naaa.mp4,0.5\nbbb.mp4,0.5\nbbb.mp4,0.5\n")
    assert submission_names(None, path) == ["bbb.mp4", "aaa.mp4"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 video more than once: bbb.mp4" in warnings[0] and str(path) in warnings[0]


def test_videos_folder_must_exist_and_hold_videos(tmp_path: Path) -> None:
    with pytest.raises(DfdcError, match="videos folder not found"):
        submission_names(tmp_path / "nope")
    with pytest.raises(DfdcError, match="no .mp4 videos in folder"):
        submission_names(tmp_path)
    with pytest.raises(DfdcError, match="need a videos folder or a sample submission"):
        submission_names(None)


# --- check_submission -----------------------------------------------------------------


GOOD = "filename,label\naaa.mp4,0.1\nbbb.mp4,0\nccc.mp4,1\nddd.mp4,0.5\n"


def test_good_file_passes(tmp_path: Path, videos_dir: Path, sample: Path) -> None:
    path = write(tmp_path / "sub.csv", GOOD)
    assert check_submission(path, videos_dir) == []
    assert check_submission(path, sample_submission=sample) == []


@pytest.mark.parametrize(
    "text, problems",
    [
        ("filename,prob\naaa.mp4,0.1\n", ["header is 'filename,prob', expected 'filename,label'"]),
        ("label,filename\n0.1,aaa.mp4\n", ["header is 'label,filename', expected 'filename,label'"]),
        ("aaa.mp4,0.1\nbbb.mp4,0.2\n", ["header is 'aaa.mp4,0.1', expected 'filename,label'"]),
        ("filename,label\n", ["no rows after the header"]),
        ("", ["file is empty"]),
        (GOOD + "bbb.mp4,0.3\n", ["1 video listed more than once: bbb.mp4"]),
        ("filename,label\naaa.mp4,0.1\n", ["3 videos missing: bbb.mp4, ccc.mp4, ddd.mp4"]),
        (GOOD + "eee.mp4,0.5\n", ["1 video not in {videos}: eee.mp4"]),
        (GOOD.replace("0.1", "nan"), ["1 label not finite: aaa.mp4 ('nan')"]),
        (GOOD.replace("0.1", "inf"), ["1 label not finite: aaa.mp4 ('inf')"]),
        (GOOD.replace("0.1", "1.5"), ["1 label outside [0, 1]: aaa.mp4 ('1.5')"]),
        (GOOD.replace("0.1", "-0.1"), ["1 label outside [0, 1]: aaa.mp4 ('-0.1')"]),
        (GOOD.replace("0.1", "FAKE"), ["1 label not a number: aaa.mp4 ('FAKE')"]),
        (GOOD.replace("0.1", ""), ["1 label not a number: aaa.mp4 ('')"]),
        (
            GOOD.replace("0.1", "2").replace(",0\n", ",-1\n"),
            ["2 labels outside [0, 1]: aaa.mp4 ('2'), bbb.mp4 ('-1')"],
        ),
        (
            "filename,label\naaa.mp4,x\nbbb.mp4,0.2\n",
            ["2 videos missing: ccc.mp4, ddd.mp4", "1 label not a number: aaa.mp4 ('x')"],
        ),
    ],
)
def test_each_kind_of_bad_file(tmp_path: Path, videos_dir: Path, text: str, problems: list[str]) -> None:
    path = write(tmp_path / "sub.csv", text)
    expected = [f"{path}: {p.format(videos=videos_dir)}" for p in problems]
    assert check_submission(path, videos_dir) == expected


def test_not_a_csv_at_all(tmp_path: Path, videos_dir: Path) -> None:
    path = tmp_path / "sub.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80\xff\xfe")
    [problem] = check_submission(path, videos_dir)
    assert problem.startswith(f"{path}: not a readable CSV (")
    assert "\n" not in problem


def test_ragged_rows(tmp_path: Path) -> None:
    extra = write(tmp_path / "extra.csv", "filename,label\naaa.mp4,0.5,extra\n")
    assert check_submission(extra) == [f"{extra}: line 2 has 3 fields, expected 2"]
    short = write(tmp_path / "short.csv", "filename,label\naaa.mp4,0.5\n\nbbb.mp4\n")  # blank line skipped
    assert check_submission(short) == [f"{short}: line 4 has 1 field, expected 2"]


def test_missing_csv(tmp_path: Path) -> None:
    assert check_submission(tmp_path / "sub.csv") == [f"{tmp_path / 'sub.csv'}: file not found"]


def test_long_lists_are_cut_short(tmp_path: Path) -> None:
    names = [f"v{i:02d}.mp4" for i in range(12)]
    sample = tmp_path / "sample.csv"
    pd.DataFrame({"filename": names, "label": 0.5}).to_csv(sample, index=False)
    path = write(tmp_path / "sub.csv", "filename,label\nv00.mp4,0.5\n")
    assert check_submission(path, sample_submission=sample) == [
        f"{path}: 11 videos missing: v01.mp4, v02.mp4, v03.mp4, v04.mp4, v05.mp4, ..."
    ]


def test_sample_submission_is_the_reference_when_given(tmp_path: Path, videos_dir: Path) -> None:
    sample = tmp_path / "sample.csv"
    pd.DataFrame({"filename": ["aaa.mp4", "bbb.mp4"], "label": 0.5}).to_csv(sample, index=False)
    path = write(tmp_path / "sub.csv", "filename,label\naaa.mp4,0.5\nccc.mp4,0.5\n")
    assert check_submission(path, videos_dir, sample) == [
        f"{path}: 1 video missing: bbb.mp4",
        f"{path}: 1 video not in the sample submission: ccc.mp4",
    ]


def test_broken_reference_is_a_user_error(tmp_path: Path) -> None:
    path = write(tmp_path / "sub.csv", GOOD)
    with pytest.raises(DfdcError, match="file not found"):
        check_submission(path, sample_submission=tmp_path / "missing.csv")
    with pytest.raises(DfdcError, match="videos folder not found"):
        check_submission(path, videos_dir=tmp_path / "missing")
