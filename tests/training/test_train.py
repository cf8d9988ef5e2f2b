"""Training on a real (small) face cache: learning runs, resume, time limits, DDP, calibrate, evaluate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import DEVICES

from dfdc.cli import main
from dfdc.inference.evaluate import evaluate
from dfdc.inference.predict import run_predict
from dfdc.models.checkpoint import load_checkpoint
from dfdc.models.clips import clip_windows
from dfdc.training.calibrate import calibrate_run
from dfdc.training.dataset import ClipDataset, read_index
from dfdc.training.train import TrainConfig, train

TINY = dict(model="frame", backbone="mobilenetv3_small_050", size=64, batch_size=16, lr=1e-3, workers=0, folds=3)


@pytest.fixture(scope="module")
def cache(built):
    return built / "cache"  # 3 clusters: 3 folds, so validation holds one original and its fakes


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.mark.parametrize("device", DEVICES)
def test_training_writes_curves_checkpoints_and_a_loadable_model(cache, tmp_path, device):
    result = train(cache, tmp_path / "run", TrainConfig(epochs=2, device=device, **TINY))
    assert result["epochs_done"] == 2 and result["stopped"] is None
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics["epoch"]) == [0, 1]
    assert metrics[["train_loss", "val_balanced_log_loss", "val_log_loss"]].notna().all().all()
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    model, config = load_checkpoint(tmp_path / "run" / "best.pt")
    assert config.input_size == 64 and config.training["epochs"] >= 1
    assert config.training["validation"][0]["val_balanced_log_loss"] == pytest.approx(
        metrics["val_balanced_log_loss"].min())


@pytest.mark.parametrize("device", DEVICES)
def test_killed_run_resumes_to_the_same_weights(cache, tmp_path, device):
    whole = tmp_path / "whole"
    train(cache, whole, TrainConfig(epochs=3, seed=7, device=device, **TINY))
    cut = tmp_path / "cut"
    args = [sys.executable, "-m", "dfdc.cli", "train", str(cache), "--out", str(cut), "--epochs", "3",
            "--seed", "7", "--model", "frame", "--backbone", "mobilenetv3_small_050", "--size", "64",
            "--batch-size", "16", "--lr", "1e-3", "--workers", "0", "--device", device, "--folds", "3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (cut / "last.pt").is_file():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # at once: epoch 0 is saved, epoch 1 runs (a sleep here could miss it)
    proc.wait()
    assert torch.load(cut / "last.pt", weights_only=True)["epoch"] < 2, "the kill should land before the end"
    done = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    a, b = _weights(whole / "last.pt"), _weights(cut / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert pd.read_csv(whole / "metrics.csv")["val_balanced_log_loss"].tolist() == pytest.approx(
        pd.read_csv(cut / "metrics.csv")["val_balanced_log_loss"].tolist(), rel=1e-5)


def test_too_short_time_limit_stops_cleanly_with_a_usable_checkpoint(cache, tmp_path):
    start = time.monotonic()
    result = train(cache, tmp_path / "run", TrainConfig(epochs=50, time_limit=8, **TINY))
    assert time.monotonic() - start < 8 + 10  # the step in flight and the final save
    assert result["stopped"] and result["epochs_done"] < 50
    model, config = load_checkpoint(tmp_path / "run" / "best.pt")
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2,)


def test_two_process_torchrun_trains_and_both_agree(cache, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29512",
           "-m", "dfdc.cli", "train", str(cache), "--out", str(out), "--epochs", "2", "--model", "frame",
           "--backbone", "mobilenetv3_small_050", "--size", "64", "--batch-size", "8", "--workers", "0",
           "--device", "cpu", "--folds", "3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 2 and metrics["ranks_agree"].all()
    load_checkpoint(out / "best.pt")


def test_calibrate_and_evaluate(cache, tmp_path, sample_dir, weights_dir):
    run = tmp_path / "run"
    train(cache, run, TrainConfig(epochs=1, **TINY))
    assert main(["calibrate", str(run)]) == 0  # the command, then the function it runs
    summary = calibrate_run(run)
    assert (run / "reliability.png").stat().st_size > 1000
    _, config = load_checkpoint(run / "best.pt")
    assert config.calibrator["method"] == summary["method"]
    scores = evaluate(sample_dir, sample_dir / "metadata.json", [run / "best.pt"], tmp_path / "eval",
                      frames=4, device="cpu", weights=weights_dir)
    assert scores["calibrated"]["n"] == 5 and scores["calibrated"]["n_fake"] == 3
    table = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert set(table.columns) >= {"video", "label", "p", "p_raw"} and len(table) == 5
    assert json.loads((tmp_path / "eval" / "scores.json").read_text())["raw"]["n"] == 5


@pytest.mark.parametrize("device", DEVICES)
def test_predict_feeds_a_sequence_checkpoint_the_clips_it_was_trained_and_validated_on(built, tmp_path, weights_dir,
                                                                                        device):
    """One clip definition (models/clips.py): the checkpoint records the cache's frames per video (12)
    and T (4); predict samples the same 12 frames of a video as the cache did and scores the same
    windows of 4 consecutive samples that validation scored."""
    cache = built / "cache"
    cfg = TrainConfig(**{**TINY, "model": "sequence", "frames": 4, "size": 48, "epochs": 1, "device": device})
    train(cache, tmp_path / "run", cfg)
    _, config = load_checkpoint(tmp_path / "run" / "best.pt")
    assert (config.frames, config.clip_length) == (12, 4)
    report = tmp_path / "report"
    run_predict(built / "sample", [tmp_path / "run" / "best.pt"], tmp_path / "s.csv", device=device,
                report_dir=report, weights=weights_dir)
    index = read_index(cache)
    validation = ClipDataset(cache, index, frames=4, random_start=False)
    checked = 0
    for row, video in enumerate(index["video"]):
        data = json.loads((report / f"{Path(video).stem}.json").read_text())
        faces = json.loads((cache / "videos" / Path(video).stem / "faces.json").read_text())
        if data["status"] != "ok" or data["tracks"][0]["frames"] != faces["tracks"][0]["frames"]:
            continue  # a fake's cache entry holds its original's boxes; predict finds its own
        assert data["sampled_frames"] == faces["sampled_frames"]  # the same 12 frames: the same stride
        clips = data["members"][0]["track_probabilities"][0]
        assert len(clips) == validation.windows_per_video[row] == len(clip_windows(len(faces["tracks"][0]["frames"]), 4))
        checked += 1
    assert checked >= 3


def test_a_frame_model_trains_with_contrast_pooling_at_the_caches_margin(cache, tmp_path, capsys):
    """`dfdc train --pooling contrast` (the pooling `dfdc cv` fine-tunes by default) trains a frame model
    whose head sees its last map's face box less the ring around it, the box placed by the cache's crop
    margin; the checkpoint rebuilds it so. A sequence model has no such pooling: one line, no run folder."""
    margin = json.loads((cache / "settings.json").read_text())["margin"]
    cfg = TrainConfig(epochs=1, **{**TINY, "backbone": "tf_efficientnet_lite0", "size": 128}, pooling="contrast")
    result = train(cache, tmp_path / "run", cfg)
    model, config = load_checkpoint(result["best"])
    assert config.model_kwargs["pooling"] == "contrast" and config.model_kwargs["margin"] == margin
    model.eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.inference_mode():
        m = model.encoder.forward_features(x)
        assert m.shape[-2:] == (4, 4)  # at 128 px, margin 0.3: the inner 2x2 cells are the face box
        inner = m[..., 1:3, 1:3].mean((2, 3))
        ring = (m.sum((2, 3)) - m[..., 1:3, 1:3].sum((2, 3))) / 12
        torch.testing.assert_close(model.features(x), inner - ring, atol=1e-4, rtol=1e-4)
    assert main(["train", str(cache), "--out", str(tmp_path / "seq"), "--model", "sequence",
                 "--pooling", "contrast"]) == 2
    assert capsys.readouterr().err.strip() == "dfdc: error: --pooling contrast is for the frame model, not 'sequence'"
    assert not (tmp_path / "seq").exists()


@pytest.mark.parametrize("command", ["train", "cv"])
def test_a_negative_blends_count_is_one_usage_line_for_train_and_cv(command, tmp_path, capsys):
    """The same flag, the same check and wording in both commands, before any cache is read or folder made."""
    with pytest.raises(SystemExit) as stop:
        main([command, str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--blends", "-1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("argument --blends: must be at least 0, not -1")
    assert not (tmp_path / "run").exists()
