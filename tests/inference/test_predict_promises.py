"""`dfdc predict`'s promises from the first second, tried as a hostile user would, on real files:
a valid CSV within half a second and at every kill, an earlier CSV kept by a run that fails,
`--out` checked up front, one line per problem (no library noise, a summary for many), videos
decoded in part scored and said so, repeated sample rows, and the time limit from process start."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import cut_short, ffmpeg, make_clip

from dfdc.cli import main
from dfdc.inference.predict import run_predict
from dfdc.inference.submission import check_submission
from dfdc.models import create_model
from dfdc.models.checkpoint import CheckpointConfig, save_checkpoint

TINY = "mobilenetv3_small_050"  # a real timm backbone, small enough for CPU tests
MARGIN = 0.5  # seconds past --time-limit a run may end, measured from outside the process


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    model = create_model("frame", backbone=TINY)
    path = tmp_path_factory.mktemp("ckpt") / "frame.pt"
    return save_checkpoint(path, model, CheckpointConfig.for_model(model, input_size=64, frames=8))


@pytest.fixture(scope="module")
def clips(sample_dir, tmp_path_factory):
    """Small real clips (2 s, 640 px wide) of two DFDC videos, and a 4 s one cut at half its bytes."""
    root = tmp_path_factory.mktemp("clips")
    out = {name: make_clip(sample_dir / f"{name}.mp4", root / f"{name}.mp4") for name in ("knqhpwoigk", "anndvqgoko")}
    whole = make_clip(sample_dir / "knqhpwoigk.mp4", root / "whole4s.mp4", seconds=4)
    out["half"] = cut_short(whole, root / "half.mp4", 0.5)
    return out


def _dfdc(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "dfdc.cli", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _lines(err: str) -> list[str]:
    """stderr's lines without the progress bar's."""
    return [s for s in re.split(r"[\r\n]+", err) if s.strip() and not s.startswith("predict:")]


def _good_csv(path: Path, names: list[str]) -> bytes:
    pd.DataFrame({"filename": names, "label": [0.1 + 0.8 * (i % 2) for i in range(len(names))]}).to_csv(path, index=False)
    return path.read_bytes()


def test_the_command_line_starts_light():
    """The first CSV is written from modules that import no torch, OpenCV, PyAV or numpy; help is quick."""
    code = ("import sys, dfdc.cli, dfdc.inference.start\n"
            "print(sorted(m for m in ('torch', 'cv2', 'av', 'numpy', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.stdout.strip() == "[]", done.stderr
    for args in (["--help"], ["predict", "--help"]):
        tick = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "dfdc.cli", *args], capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0 and "usage: dfdc" in done.stdout
        assert time.monotonic() - tick < 1.0


@pytest.mark.parametrize("after", [0.5, 3.0])
def test_a_kill_at_any_moment_leaves_a_valid_csv(videos, checkpoint, tmp_path, weights_dir, after):
    out = tmp_path / "sub" / "submission.csv"
    tick = time.monotonic()
    proc = _dfdc("predict", videos, "--checkpoint", checkpoint, "--out", out, "--device", "cpu",
                 "--weights", weights_dir, "--frames", "8")
    time.sleep(max(0.0, after - (time.monotonic() - tick)))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert check_submission(out, videos) == []


def test_a_failing_run_leaves_an_earlier_csv_untouched(videos, checkpoint, tmp_path, capsys):
    names = sorted(p.name for p in videos.glob("*.mp4"))
    out = tmp_path / "submission.csv"
    before = _good_csv(out, names)
    mtime = out.stat().st_mtime_ns
    cut = cut_short(checkpoint, tmp_path / "cut.pt", 0.6)  # a copy cut short
    state = tmp_path / "state.pt"  # a real torch file, but not a dfdc checkpoint: refused only when loaded
    torch.save({"w": torch.zeros(3)}, state)
    for bad, words in [(tmp_path / "mistyped.pt", "no such file"), (cut, "damaged torch file")]:
        tick = time.monotonic()
        proc = _dfdc("predict", videos, "--checkpoint", bad, "--out", out)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and words in err and str(bad) in err and len(_lines(err)) == 1, err
        assert time.monotonic() - tick < 3.0  # found before the heavy imports
    assert main(["predict", str(videos), "--checkpoint", str(state), "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "not a dfdc checkpoint" in err and len(_lines(err)) == 1
    assert out.read_bytes() == before and out.stat().st_mtime_ns == mtime
    # With no CSV yet, the same run leaves the prior for every video at once.
    fresh = tmp_path / "fresh.csv"
    assert main(["predict", str(videos), "--checkpoint", str(state), "--out", str(fresh), "--device", "cpu"]) == 2
    assert check_submission(fresh, videos) == [] and set(pd.read_csv(fresh)["label"]) == {0.5}


def test_a_kill_over_an_earlier_csv_leaves_a_valid_one(videos, checkpoint, tmp_path, weights_dir):
    out = tmp_path / "submission.csv"
    _good_csv(out, sorted(p.name for p in videos.glob("*.mp4")))
    proc = _dfdc("predict", videos, "--checkpoint", checkpoint, "--out", out, "--device", "cpu",
                 "--weights", weights_dir, "--frames", "8")
    time.sleep(3.0)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert check_submission(out, videos) == []


def test_out_is_checked_up_front_in_one_line(videos, checkpoint, tmp_path, capsys):
    sample = tmp_path / "sample_submission.csv"
    _good_csv(sample, sorted(p.name for p in videos.glob("*.mp4")))
    other = tmp_path / "notes.txt"
    other.write_text("my notes, not a submission\n")
    cases = [(tmp_path, "is a folder"), (Path("/proc/submission.csv"), "cannot be written"),
             (Path("/proc/no/such/submission.csv"), "cannot be written"), (sample, "is the sample submission"),
             (other, "is not a submission CSV")]
    for out, words in cases:
        code = main(["predict", str(videos), "--checkpoint", str(checkpoint), "--out", str(out),
                     "--sample-submission", str(sample)])
        err = capsys.readouterr().err
        assert code == 2 and words in err and str(out) in err and len(_lines(err)) == 1, err
    assert other.read_text() == "my notes, not a submission\n"
    proc = _dfdc("predict", videos, "--checkpoint", checkpoint, "--out", "/proc/submission.csv")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and len(_lines(err)) == 1 and "Traceback" not in err


def test_one_line_per_problem_with_its_reason(clips, sample_dir, checkpoint, tmp_path, weights_dir):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "good.mp4").symlink_to(clips["knqhpwoigk"])
    (folder / "UPPER.MP4").symlink_to(clips["anndvqgoko"])
    (folder / "half.mp4").symlink_to(clips["half"])
    (folder / "text.mp4").write_text("a text file, named like a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    ffmpeg("-i", sample_dir / "knqhpwoigk.mp4", "-vn", "-c:a", "copy", folder / "audio.mp4")
    cut_short(sample_dir / "knqhpwoigk.mp4", folder / "damaged.mp4", 0.5)
    (folder / "dir.mp4").mkdir()
    (folder / "broken.mp4").symlink_to(tmp_path / "gone.mp4")
    os.mkfifo(folder / "fifo.mp4")
    expected = {"text.mp4": "not a video file", "empty.mp4": "empty file", "audio.mp4": "no video stream",
                "damaged.mp4": "a damaged MP4", "dir.mp4": "a folder, not a video file",
                "broken.mp4": "broken symbolic link", "fifo.mp4": "not a regular file",
                "half.mp4": "decoded"}
    out, report = tmp_path / "submission.csv", tmp_path / "report"
    proc = _dfdc("predict", folder, "--checkpoint", checkpoint, "--out", out, "--device", "cpu",
                 "--weights", weights_dir, "--frames", "8", "--report", report)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert check_submission(out, folder) == []
    lines = _lines(err)
    assert all(line.startswith("dfdc: ") for line in lines), lines  # no library's own lines
    for name, words in expected.items():
        mine = [line for line in lines if f"/{name}:" in line]
        assert len(mine) == 1 and words in mine[0], (name, mine)
    labels = pd.read_csv(out).set_index("filename")["label"]
    assert "UPPER.MP4" in labels.index and (report / "UPPER.json").is_file()
    assert all(labels[n] == 0.5 for n in expected if n != "half.mp4")
    text = pd.read_json(report / "text.json", typ="series")
    assert text["status"] == "failed" and text["library_detail"]  # the decoder's words, in the report only
    half = pd.read_json(report / "half.json", typ="series")
    line = next(line for line in lines if "/half.mp4:" in line)
    assert re.search(r"decoded \d of 8 sampled frames, up to [\d.]+ s of 4 s", line)
    assert half["status"] in ("partial", "no_face") and half["warning"] and not half["decoded"]["complete"]
    assert labels["half.mp4"] == pytest.approx(half["label"])
    assert (report / "libraries.log").is_file()


def _without_root_powers() -> None:
    """In the child, before exec: drop the capabilities that let root read any file (the bounding
    set is what an exec'd root process keeps), so a file with no read permission is refused."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


def test_an_unreadable_video_is_permission_denied(tmp_path, checkpoint):
    folder = tmp_path / "videos"
    folder.mkdir()
    secret = folder / "secret.mp4"
    secret.write_bytes(b"\0" * 100)
    secret.chmod(0)
    out = tmp_path / "s.csv"
    proc = _dfdc("predict", folder, "--checkpoint", checkpoint, "--out", out, preexec_fn=_without_root_powers)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _lines(err) == [f"dfdc: WARNING: {secret}: permission denied (cannot read the file); it gets the prior 0.50"]
    assert pd.read_csv(out).to_dict("list") == {"filename": ["secret.mp4"], "label": [0.5]}


def test_many_missing_videos_make_one_line_and_repeated_rows_one_row(clips, checkpoint, tmp_path, weights_dir,
                                                                      caplog):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "aaa.mp4").symlink_to(clips["knqhpwoigk"])
    (folder / "bbb.MP4").symlink_to(clips["anndvqgoko"])  # listed as bbb.mp4
    (folder / "ccc.mp4").symlink_to(clips["knqhpwoigk"])
    names = [f"v{i:04d}.mp4" for i in range(4997)] + ["aaa.mp4", "bbb.mp4", "ccc.mp4"]
    sample = tmp_path / "sample_submission.csv"
    rows = names[:2500] + ["aaa.mp4"] + names[2500:]  # aaa.mp4 listed twice
    pd.DataFrame({"filename": rows, "label": 0.5}).to_csv(sample, index=False)
    out, report = tmp_path / "submission.csv", tmp_path / "report"
    scores = run_predict(folder, [checkpoint], out, sample_submission=sample, frames=8, device="cpu",
                         weights=weights_dir, report_dir=report)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert check_submission(out, sample_submission=sample) == []
    assert len(scores) == 5000 and len(pd.read_csv(out)) == 5000
    missing = [w for w in warnings if "not in" in w and "listed" in w]
    assert len(missing) == 1 and missing[0].startswith("4997 videos listed but not in the folder")
    assert len([w for w in warnings if "more than once" in w and "aaa.mp4" in w]) == 1
    assert len(warnings) <= 5, warnings
    assert sorted(p.name for p in report.glob("*.json")) == ["aaa.json", "bbb.json", "ccc.json"]


def test_time_limit_5_counts_from_process_start(videos, checkpoint, tmp_path, weights_dir):
    for i in range(7):  # 40 videos: far more than 5 s allows
        for p in list(videos.glob("[a-z]*.mp4"))[:5]:
            (videos / f"copy{i}_{p.name}").symlink_to(p.resolve())
    out = tmp_path / "submission.csv"
    tick = time.monotonic()
    proc = _dfdc("predict", videos, "--checkpoint", checkpoint, "--out", out, "--time-limit", "5",
                 "--device", "cpu", "--weights", weights_dir)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - tick
    assert proc.returncode == 0, err
    assert took <= 5 + MARGIN, f"took {took:.2f} s for a 5 s limit"
    assert check_submission(out, videos) == [] and len(pd.read_csv(out)) == 40
    assert "time limit reached" in err


def test_many_videos_with_one_problem_are_summed_up(checkpoint, tmp_path, weights_dir, caplog):
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(8):
        (folder / f"t{i}.mp4").write_text(f"text file {i}, named like a video\n")
    out = tmp_path / "submission.csv"
    run_predict(folder, [checkpoint], out, frames=8, device="cpu", weights=weights_dir, workers=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len([w for w in warnings if "cannot open as a video: not a video file" in w]) == 5
    summary = "8 videos in all: cannot decode: t0.mp4, t1.mp4, t2.mp4, t3.mp4, t4.mp4, ...; each gets the prior 0.50"
    assert warnings[5:] == ["more videos: cannot decode; they are summed up at the end", summary]
    assert check_submission(out, folder) == [] and set(pd.read_csv(out)["label"]) == {0.5}
