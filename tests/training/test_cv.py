"""dfdc cv and the real dry run on real videos: three identity groups of ../shared/data/real."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DEVICES

from dfdc import demo
from dfdc.demo import run_demo
from dfdc.device import scoring_precision
from dfdc.errors import DfdcError
from dfdc.inference.ensemble import load_members, score_tracks
from dfdc.inference.submission import check_submission
from dfdc.models import create_model
from dfdc.models.checkpoint import load_checkpoint
from dfdc.models.clips import clip_windows
from dfdc.scores.aggregation import video_score
from dfdc.scores.metrics import log_loss, score_table
from dfdc.training.cv import CVConfig, _partners, run_cv
from dfdc.training.extract import run_extract

FOLDERS = ("celebdf", "ffpp_misc", "dfdc")  # 298x298 face crops, 640x480 FF++, 1080x1080 DFDC: 25 videos
TINY = dict(backbone="mobilenetv3_small_050", pretrained=None, size=64, device="cpu", tune=0)


@pytest.fixture(scope="module")
def real_root(shared, tmp_path_factory) -> Path:
    """Three real groups, each in its folder with its metadata.json, plus the bad ones a data root may
    hold: broken JSON, no metadata.json, a label that is not REAL/FAKE and a listed video missing."""
    root = tmp_path_factory.mktemp("real")
    for name in FOLDERS:
        (root / name).mkdir()
        for video in (shared / "data" / "real" / name).glob("*.mp4"):
            (root / name / video.name).symlink_to(video)
        meta = json.loads((shared / "data" / "real" / name / "metadata.json").read_text())
        if name == "dfdc":
            meta["gone.mp4"] = {"label": "REAL", "original": None}
            meta["maybe.mp4"] = {"label": "UNSURE", "original": None}
        (root / name / "metadata.json").write_text(json.dumps(meta))
    (root / "broken").mkdir()
    (root / "broken" / "metadata.json").write_text("{not json")
    (root / "notes").mkdir()
    return root


@pytest.fixture(scope="module")
def cache(real_root, weights_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cache") / "cache"
    summary = run_extract(real_root, out, frames=8, size=64, min_faces=4, weights=weights_dir)
    assert summary["done"] == 25 and summary["failed"] == 0
    assert summary["problems"] == {"no_metadata": 1, "broken_json": 1, "missing_file": 1, "unknown_label": 1,
                                   "missing_original": 15}  # Celeb-DF and DFDC fakes: originals not here
    return out


def _cached_crops(cache: Path, video: str) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB: a video's cached main-track crops."""
    folder = cache / "videos" / Path(video).stem
    return np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted((folder / "crops").glob("t00_*.png"))])


def _crops_as_predict_sees_them(cache: Path, video: str, config) -> torch.Tensor:
    """(n, 3, H, W): a video's cached main-track crops, normalised by the checkpoint's mean and std."""
    x = torch.from_numpy(_cached_crops(cache, video).copy()).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(config.mean)[:, None, None]) / torch.tensor(config.std)[:, None, None]


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_fold_scores_come_from_models_that_never_saw_the_folder(cache, tmp_path, device):
    summary = run_cv(cache, tmp_path / "cv", CVConfig(**dict(TINY, device=device)))
    oof = pd.read_csv(tmp_path / "cv" / "oof.csv")
    assert len(oof) == 25 and oof["video"].is_unique
    assert summary["folds_k"] == 3 and oof.groupby("folder")["fold"].nunique().eq(1).all()  # a folder is a fold
    assert summary["grouped_by"] == "folder (part)"
    pooled = score_table(oof.assign(p=oof["p_raw"]))
    assert summary["pooled"]["raw"]["balanced_log_loss"] == pytest.approx(pooled["balanced_log_loss"])
    assert set(summary["per_folder"]) == set(FOLDERS) and len(summary["folds"]) == 3
    for name in ("curves.png", "reliability.png", "roc.png"):
        assert cv2.imread(str(tmp_path / "cv" / name)) is not None
    # 50/50 test sets of each fold: Celeb-DF's fold holds 7 REAL and 7 FAKE, so each draw is the whole fold
    matched = summary["matched"]
    assert [f["folders"] for f in matched["folds"]] == [f["folders"] for f in summary["folds"]]
    celeb = next(f for f in matched["folds"] if f["folders"] == ["celebdf"])
    fold = oof[oof["folder"] == "celebdf"]
    assert celeb["raw"] == pytest.approx(log_loss(fold["label"], fold["p_raw"]))
    assert celeb["calibrated"] == pytest.approx(log_loss(fold["label"], fold["p"]))
    assert set(matched["mean_over_folds"]) == {"raw", "calibrated", "matched"}
    assert matched["pooled"]["n"] == 25  # every fold matched as a whole to its own balance, then pooled

    # The fold checkpoint scores its held-out video's cached crops exactly as the fold's head did.
    row = oof.iloc[0]
    model, config = load_checkpoint(tmp_path / "cv" / "folds" / f"fold_{row['fold']}.pt", device=device)
    assert config.aggregation == summary["aggregation"] and config.calibrator is not None
    assert config.matched_calibrator is not None
    x = _crops_as_predict_sees_them(cache, row["video"], config).to(device)
    with torch.inference_mode():
        with scoring_precision(torch.device(device)):  # cv computes the frozen features in predict's precision
            features = model.features(x)
        p = torch.sigmoid(model.fc(features.float())).squeeze(1).cpu().numpy()
    assert np.clip(video_score([p], config.aggregation), 0.01, 0.99) == pytest.approx(row["p_raw"], abs=1e-4)

    # features computed anew: the same figures (on CUDA too, whose default kernels sum in varying order)
    again = run_cv(cache, tmp_path / "again", CVConfig(**dict(TINY, device=device)))
    assert pd.read_csv(tmp_path / "again" / "oof.csv").equals(oof)
    assert again["pooled"] == summary["pooled"]


def test_sequence_head_learns_its_training_folds_and_records_its_clips(cache, tmp_path):
    summary = run_cv(cache, tmp_path / "seq", CVConfig(model="sequence", clip_length=4, epochs=12, **TINY))
    histories = [r["history"] for r in summary["training"]]
    assert all(len(h) == 12 and h[-1] < h[0] for h in histories)
    _, config = load_checkpoint(tmp_path / "seq" / "model.pt")
    assert (config.frames, config.clip_length, config.model) == (8, 4, "sequence")


def test_real_dry_run_ends_in_a_valid_submission(real_root, sample_dir, weights_dir, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(real_root / "ffpp_misc", data / "ffpp_misc", symlinks=True)
    meta = json.loads((real_root / "celebdf" / "metadata.json").read_text())
    for half, names in enumerate((list(meta)[0::2], list(meta)[1::2])):  # Celeb-DF as two folders: three in all
        (data / f"celebdf_{half}").mkdir()
        for name in names:
            (data / f"celebdf_{half}" / name).symlink_to((real_root / "celebdf" / name).resolve())
        (data / f"celebdf_{half}" / "metadata.json").write_text(json.dumps({name: meta[name] for name in names}))
    monkeypatch.setattr(demo, "DEMO_FOLDS", 2)  # fewer folds than folders, as the demo's 4 on the real set's 8
    summary = run_demo(tmp_path / "demo", tmp_path / "submission.csv", data=data, test=sample_dir,
                       weights=weights_dir, device="cpu")  # the demo's own settings otherwise
    assert summary["valid"] and check_submission(tmp_path / "submission.csv", sample_dir) == []
    assert summary["cv"]["pooled"]["raw"]["n"] == 18 and summary["cv"]["folds_k"] == 2
    held_out = sorted(folder for fold in summary["cv"]["folds"] for folder in fold["folders"])
    assert held_out == ["celebdf_0", "celebdf_1", "ffpp_misc"]  # every folder held out whole, in one fold
    _, config = load_checkpoint(tmp_path / "demo" / "model.pt")
    assert config.calibrator is not None and config.frames == 32
    assert (tmp_path / "demo" / "cv" / "roc.png").is_file()


@pytest.mark.parametrize("device", DEVICES)
def test_fine_tuned_tail_is_what_the_fold_checkpoint_scores(cache, tmp_path, device):
    tuned = dict(TINY, backbone="tf_efficientnet_lite0", tune=2, views=2, epochs=2, align=True, device=device)
    summary = run_cv(cache, tmp_path / "tuned", CVConfig(**tuned))
    assert all(len(r["history"]) == 2 for r in summary["training"])
    oof = pd.read_csv(tmp_path / "tuned" / "oof.csv")
    assert len(oof) == 25 and oof["p_raw"].nunique() > 10
    # self-blended fakes were cached for the REAL videos' crops alone, 2 per crop (the default)
    blend_keys = [p for p in (tmp_path / "tuned").glob("features-*.json") if "blends" in json.loads(p.read_text())]
    assert len(blend_keys) == 1
    blended = np.load(blend_keys[0].with_suffix(".npy"))
    index = pd.read_csv(cache / "index.csv")
    real_crops = index.loc[(index["status"] == "done") & (index["label"] == "REAL"), "n_faces"].sum()
    assert blended.shape[:2] == (real_crops, 2) and 0 < real_crops < index["n_faces"].sum()

    # The fold checkpoint on the crops predict would see gives the fold's held-out score: its frozen
    # blocks in predict's precision (as cv computed them), then the video's maps aligned by their own
    # statistics to the fold's training videos' (held in the checkpoint), then the tuned blocks in float32;
    # predict's scorer (the whole model in its precision, BatchNorms folded) gives nearly that. The blocks
    # before the tuned ones are the start model's, the tuned ones have moved.
    row = oof.iloc[-1]
    model, config = load_checkpoint(tmp_path / "tuned" / "folds" / f"fold_{row['fold']}.pt", device=device)
    final, _ = load_checkpoint(tmp_path / "tuned" / "model.pt", device=device)
    x = _crops_as_predict_sees_them(cache, row["video"], config).to(device)
    block = len(model.encoder.blocks) - tuned["tune"]
    assert model.align_block == block and summary["config"]["align"]
    assert model.align.std.min() > 0.1 and not torch.allclose(model.align.mean, final.align.mean)
    with torch.inference_mode():
        with scoring_precision(torch.device(device)):
            early = model.early(x, block)
        p = torch.sigmoid(model.late(model.align(early.float()), block)).cpu().numpy()
    member = load_members([tmp_path / "tuned" / "folds" / f"fold_{row['fold']}.pt"], None, torch.device(device))[0]
    scored = score_tracks(member, [[_cached_crops(cache, row["video"])]], 4, torch.device(device))[0][0]
    assert scored == pytest.approx(p, abs=0.02) and np.ptp(p) > 0.02
    assert np.clip(video_score([p], config.aggregation), 0.01, 0.99) == pytest.approx(row["p_raw"], abs=1e-4)
    torch.manual_seed(0)
    start = create_model("frame", backbone="tf_efficientnet_lite0", pretrained=False, pooling="last").state_dict()
    tuned_state = {k: v.cpu() for k, v in model.state_dict().items()}
    assert torch.equal(tuned_state["encoder.blocks.4.0.conv_pw.weight"], start["encoder.blocks.4.0.conv_pw.weight"])
    assert not torch.equal(tuned_state["encoder.blocks.5.0.conv_pw.weight"], start["encoder.blocks.5.0.conv_pw.weight"])


def test_fakes_train_beside_their_original_or_a_real_video_of_their_folder():
    videos = pd.DataFrame({
        "video": ["orig.mp4", "fake.mp4", "lone_fake.mp4", "same_folder_real.mp4", "other_real.mp4", "far_fake.mp4"],
        "folder": ["a", "a", "b", "b", "c", "d"],
        "original": ["", "orig.mp4", "gone.mp4", "", "", ""],
        "frames": [[0, 10, 20, 30], [0, 9, 21, 30], [0, 1], [5, 6, 7], [1, 2], [3]],
    })
    y = np.array([0, 1, 1, 0, 0, 1])
    partner = _partners(videos, y, np.random.default_rng(0))
    assert [partner(1, c) for c in range(4)] == [(0, 0), (0, 1), (0, 2), (0, 3)]  # the nearest sampled frame
    assert {partner(2, 0)[0] for _ in range(20)} == {3}  # original absent: a REAL of its own folder
    assert {partner(5, 0)[0] for _ in range(40)} == {0, 3, 4}  # no REAL in its folder: any REAL


def test_sequence_head_on_the_tuned_encoder_is_what_its_checkpoint_scores(cache, tmp_path):
    cfg = CVConfig(**dict(TINY, backbone="tf_efficientnet_lite0", tune=2, views=2, epochs=1),
                   model="sequence", clip_length=4)
    summary = run_cv(cache, tmp_path / "seq", cfg)
    assert all(len(r["history"]) == 1 + 30 for r in summary["training"])  # 1 tuning epoch, then the head's 30
    oof = pd.read_csv(tmp_path / "seq" / "oof.csv")
    row = oof.iloc[3]
    model, config = load_checkpoint(tmp_path / "seq" / "folds" / f"fold_{row['fold']}.pt")
    assert (config.model, config.clip_length) == ("sequence", 4)
    x = _crops_as_predict_sees_them(cache, row["video"], config)
    windows = clip_windows(len(x), 4)  # the windows predict cuts
    # cv's path: the checkpoint's encoder as a frame model, its frozen blocks in predict's precision
    frame = create_model("frame", backbone="tf_efficientnet_lite0", pretrained=False, pooling="last").eval()
    frame.encoder.load_state_dict(model.encoder.state_dict())
    block = len(frame.encoder.blocks) - 2

    @torch.inference_mode()
    def logits(precision: contextlib.AbstractContextManager) -> np.ndarray:
        with precision:
            early = frame.early(x, block)
        pooled = frame.late_features(early.float(), block)
        return model.head_forward(torch.stack([pooled[w] for w in windows])).numpy()

    p = 1 / (1 + np.exp(-logits(scoring_precision(torch.device("cpu")))))
    assert np.clip(video_score([p], config.aggregation), 0.01, 0.99) == pytest.approx(row["p_raw"], abs=1e-4)
    with torch.inference_mode():  # the checkpoint's own forward is that path
        whole = model(torch.stack([x[w] for w in windows])).numpy()
    assert whole == pytest.approx(logits(contextlib.nullcontext()), abs=1e-4)


def test_tuning_more_blocks_than_the_backbone_has_is_one_clear_error(cache, tmp_path):
    for tune, views in ((9, 3), (2, 0)):
        with pytest.raises(DfdcError, match=r"--tune must be within 1\.\.7 .* not %d and %d" % (tune, views)):
            run_cv(cache, tmp_path / "bad", CVConfig(**dict(TINY, backbone="tf_efficientnet_lite0", tune=tune,
                                                            views=views)))
        assert not (tmp_path / "bad").exists()


def test_a_fold_whose_training_videos_are_one_class_is_one_clear_error(cache, tmp_path):
    """The REAL videos of one folder only: holding that folder out leaves nothing REAL to train on."""
    one = tmp_path / "cache"
    one.mkdir()
    (one / "videos").symlink_to(cache / "videos")
    shutil.copy(cache / "settings.json", one / "settings.json")
    index = pd.read_csv(cache / "index.csv")
    index[(index["label"] == "FAKE") | (index["folder"] == "dfdc")].to_csv(one / "index.csv", index=False)
    with pytest.raises(DfdcError, match=r"cache: cannot cross-validate: the training videos of fold \d are all FAKE "
                                        r"\(grouped by part\); use fewer --folds or another --fold-by$"):
        run_cv(one, tmp_path / "out", CVConfig(**TINY))
    assert not (tmp_path / "out").exists()
