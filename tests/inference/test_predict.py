"""`dfdc predict` on the real sample videos: complete CSVs, bad videos, time limits, kill + resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DEVICES, add_bad_videos, make_clip, write_video

from dfdc.cli import main
from dfdc.inference.predict import run_predict
from dfdc.inference.submission import check_submission
from dfdc.models import create_model
from dfdc.models.checkpoint import CheckpointConfig, save_checkpoint
from dfdc.video.read import read_video

TINY = "mobilenetv3_small_050"  # a real timm backbone, small enough for CPU tests


def _checkpoint(path: Path, name: str, **overrides) -> Path:
    model = create_model(name, backbone=TINY)
    return save_checkpoint(path, model, CheckpointConfig.for_model(model, input_size=64, **overrides))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {
        "frame": _checkpoint(root / "frame.pt", "frame", frames=8),
        "sequence": _checkpoint(root / "sequence.pt", "sequence_spatial", frames=8, clip_length=4),
    }


def _read(csv: Path) -> pd.Series:
    return pd.read_csv(csv).set_index("filename")["label"]


@pytest.mark.parametrize("device", DEVICES)
def test_ensemble_of_both_families_scores_every_video(videos, checkpoints, tmp_path, weights_dir, device):
    out = tmp_path / "sub" / "submission.csv"
    report = tmp_path / "report"
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # predict shares the cores out among its workers for the run, then leaves this be
    try:
        scores = run_predict(videos, [checkpoints["frame"], checkpoints["sequence"]], out, frames=8,
                             device=device, report_dir=report, weights=weights_dir, ensemble_weights=[2, 1])
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert check_submission(out, videos) == []
    labels = _read(out)
    assert sorted(labels.index) == sorted(p.name for p in videos.glob("*.mp4"))
    assert np.allclose(labels.loc[list(scores)].values, list(scores.values()))
    data = json.loads((report / "knqhpwoigk.json").read_text())
    assert data["status"] == "ok" and len(data["tracks"]) >= 1
    frame_probs, clip_probs = (m["track_probabilities"][0] for m in data["members"])
    assert len(frame_probs) == 8 and len(clip_probs) == 2  # 8 crops; clips of 4
    calibrated = [m["calibrated"] for m in data["members"]]
    assert data["label"] == pytest.approx(np.clip((2 * calibrated[0] + calibrated[1]) / 3, 0.01, 0.99))


@pytest.mark.parametrize("device", DEVICES)
def test_bad_videos_get_the_prior_and_the_rest_a_score(videos, checkpoints, tmp_path, weights_dir, caplog,
                                                      sample_dir, device):
    bad = add_bad_videos(videos, sample_dir) + ["single.mp4"]
    single = read_video(videos / "anndvqgoko.mp4", 1).frames  # one real face: still not a video
    write_video(videos / "single.mp4", [single[0][::2, ::2]])
    out = tmp_path / "submission.csv"
    run_predict(videos, [checkpoints["frame"]], out, frames=8, device=device, weights=weights_dir, prior=0.5)
    labels = _read(out)
    assert check_submission(out, videos) == []
    assert all(labels[b] == 0.5 for b in bad)
    good = [n for n in labels.index if n not in bad]
    assert len(good) == 5 and all(labels[g] != 0.5 for g in good)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for b in bad:
        line = next(w for w in warnings if b in w)
        assert "\n" not in line and "prior" in line


def _dfdc(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "dfdc.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_a_too_short_time_limit_still_ends_in_time_with_a_complete_csv(videos, checkpoints, tmp_path, weights_dir):
    for i in range(7):  # 40 videos: far more than the limit allows on this CPU
        for p in list(videos.glob("[a-z]*.mp4"))[:5]:
            (videos / f"copy{i}_{p.name}").symlink_to(p.resolve())
    out = tmp_path / "submission.csv"
    limit = 12.0
    start = time.monotonic()
    proc = _dfdc("predict", str(videos), "--checkpoint", str(checkpoints["frame"]), "--out", str(out),
                 "--time-limit", f"{limit:g}", "--frames", "32", "--device", "cpu", "--weights", str(weights_dir))
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - start
    assert proc.returncode == 0, err
    assert took <= limit * 1.05, f"took {took:.1f} s for a {limit} s limit"
    assert check_submission(out, videos) == []
    assert len(_read(out)) == 40
    assert "time limit reached" in err


def test_kill_leaves_a_valid_csv_and_resume_finishes(videos, checkpoints, tmp_path, weights_dir):
    out = tmp_path / "submission.csv"
    report = tmp_path / "report"
    args = ["predict", str(videos), "--checkpoint", str(checkpoints["frame"]), "--out", str(out),
            "--frames", "8", "--device", "cpu", "--weights", str(weights_dir), "--report", str(report),
            "--workers", "1"]
    proc = _dfdc(*args)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(report.glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = {p.name: p.stat().st_mtime_ns for p in report.glob("*.json")}
    assert 1 <= len(done) < 5, "the kill should land mid-run"
    assert check_submission(out, videos) == []  # complete and valid at the moment of the kill
    proc = _dfdc(*args, "--resume")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert check_submission(out, videos) == []
    assert len(list(report.glob("*.json"))) == 5
    assert all(report.joinpath(n).stat().st_mtime_ns == t for n, t in done.items())  # not redone
    labels = _read(out)
    for p in report.glob("*.json"):
        data = json.loads(p.read_text())
        assert labels[data["video"]] == pytest.approx(data["label"])


def test_check_submission_cli(videos, tmp_path, capsys):
    good = tmp_path / "good.csv"
    pd.DataFrame({"filename": sorted(p.name for p in videos.glob("*.mp4")), "label": 0.5}).to_csv(good, index=False)
    assert main(["check-submission", str(good), "--videos", str(videos)]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("filename,label\nknqhpwoigk.mp4,1.5\n")
    assert main(["check-submission", str(bad), "--videos", str(videos)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith("dfdc: error: ") and "bad.csv" in line for line in err)


def test_foreign_checkpoint_is_a_one_line_error(videos, tmp_path, capsys):
    fake = tmp_path / "model.pt"
    fake.write_text("not a checkpoint")
    code = main(["predict", str(videos), "--checkpoint", str(fake), "--out", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "model.pt" in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def many_clips(sample_dir, tmp_path_factory):
    """A test set of 24 real clips (2 s, 480 px wide): 3 DFDC videos, 8 copies of each under other
    names, and one file that is not a video."""
    root = tmp_path_factory.mktemp("many")
    sources = [make_clip(sample_dir / f"{name}.mp4", root / f"{name}.mp4", width=480)
               for name in ("knqhpwoigk", "anndvqgoko", "abqwwspghj")]
    folder = root / "test"
    folder.mkdir()
    for k in range(8):
        for src in sources:
            (folder / f"{src.stem}_{k}.mp4").symlink_to(src)
    (folder / "notes.mp4").write_text("not a video")
    return folder


def test_match_prior_shifts_the_scored_videos_together_to_the_known_balance(many_clips, checkpoints, tmp_path,
                                                                           weights_dir, caplog):
    # an untrained model scores every video near 0.5; its calibrator moves them all towards FAKE,
    # as footage unlike the training videos does
    from dfdc.scores.calibration import Calibrator

    moved = Calibrator("platt", {"scale": 1.0, "shift": 2.0}, train_prior=0.5, test_prior=0.5).to_dict()
    ckpt = [_checkpoint(tmp_path / "moved.pt", "frame", frames=8, calibrator=moved)]
    plain = run_predict(many_clips, ckpt, tmp_path / "plain.csv", frames=8, device="cpu", weights=weights_dir)
    report = tmp_path / "report"
    matched = run_predict(many_clips, ckpt, tmp_path / "matched.csv", frames=8, device="cpu", weights=weights_dir,
                          report_dir=report, match=True)
    written = _read(tmp_path / "matched.csv")
    assert check_submission(tmp_path / "matched.csv", many_clips) == []
    assert written["notes.mp4"] == 0.5 and plain["notes.mp4"] == 0.5  # the prior: no model score, not matched
    scored = [n for n in written.index if n != "notes.mp4"]
    assert len(scored) == 24 and len({plain[n] for n in scored}) > 1
    assert np.mean([plain[n] for n in scored]) > 0.7  # without the shift the set sits far from its balance
    assert np.mean([written[n] for n in scored]) == pytest.approx(0.5, abs=1e-6)
    shift = [np.log(written[n] / (1 - written[n])) - np.log(plain[n] / (1 - plain[n])) for n in scored]
    assert np.ptp(shift) < 1e-6  # one shift for the whole set: the order and the gaps between videos kept
    assert np.allclose([matched[n] for n in written.index], written.values)
    # the reports keep the scores before the shift, so a resumed run matches old and new together again
    assert all(json.loads((report / f"{Path(n).stem}.json").read_text())["label"] == pytest.approx(plain[n])
               for n in scored)
    (tmp_path / "matched.csv").unlink()
    again = run_predict(many_clips, ckpt, tmp_path / "matched.csv", frames=8, device="cpu", weights=weights_dir,
                        report_dir=report, resume=True, match=True)
    assert again == pytest.approx(matched)

    # a balance of all REAL or all FAKE cannot be matched: one line, before any work
    assert main(["predict", str(many_clips), "--checkpoint", str(ckpt[0]), "--out", str(tmp_path / "no.csv"),
                 "--match-prior", "--prior", "1"]) == 2
    assert not (tmp_path / "no.csv").exists()

    # too few videos to say where the set's balance lies: left as they are, and said so
    few = tmp_path / "few"
    few.mkdir()
    for n in scored[:3]:
        (few / n).symlink_to(many_clips / n)
    caplog.clear()
    alone = run_predict(few, ckpt, tmp_path / "few.csv", frames=8, device="cpu", weights=weights_dir, match=True)
    assert alone == pytest.approx({n: plain[n] for n in scored[:3]})
    assert any("--match-prior: only 3 videos" in r.getMessage() for r in caplog.records)
