"""`dfdc cv`: grouped K-fold cross-validation of a frozen-backbone frame model, on real videos.

Every video gets one out-of-fold P(FAKE) from the model that never saw its fold; a fold is a whole
group (by default a folder of the data root: one dataset or identity group, so a face, a
compression copy or the other direction of a swap never sits on both sides). The backbone is
frozen, so its features are computed once (features.py) and each fold fits only the linear head
(scikit-learn's logistic regression, every video weighing the same, REAL and FAKE balanced):
seconds per fold on a CPU, the same result on a busy machine as on a quiet one.

From the pooled out-of-fold scores it chooses the aggregation (frame scores -> video score) and
fits the calibrator; each fold is also scored with a calibrator fitted on the other folds only, so
the per-fold calibrated figures are held out too. It writes the fold models (an ensemble `dfdc
predict` takes as a folder) and a final model fitted on every video, each a checkpoint holding the
calibrator and the aggregation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..defaults import AGGREGATION, CLIP, CROP_MARGIN, PRIOR
from ..device import pick_device
from ..errors import DfdcError
from ..metadata import assign_folds
from ..models import create_model
from ..models.checkpoint import CheckpointConfig, save_checkpoint
from ..scores.aggregation import AGGREGATIONS, video_score
from ..scores.calibration import Calibrator, fit_calibrator, reliability_diagram
from ..scores.metrics import score_table
from .curves import cv_curves, roc_curves
from .dataset import read_index
from .features import cached_features, crop_features

log = logging.getLogger("dfdc")


@dataclass
class CVConfig:
    folds: int | None = None  # None: one fold per group (leave one folder out) when grouping by part, else 5
    by: str = "part"  # "part": a folder of the data root; "cluster": an original and its fakes
    backbone: str = "tf_efficientnet_lite0"
    pretrained: str | None = "lite0"
    pooling: str = "multiscale"
    size: int = 224
    C: float = 0.003  # inverse L2 strength of the head, on standardised features
    seed: int = 0
    device: str = "auto"
    batch_size: int = 32


def run_cv(cache: str | Path, out: str | Path, cfg: CVConfig) -> dict:
    """Cross-validate, calibrate, and write out/: oof.csv, cv.json, folds/fold_K.pt, model.pt and the plots."""
    cache, out = Path(cache), Path(out)
    index = read_index(cache)
    settings = json.loads((cache / "settings.json").read_text())
    if "folder" not in index:  # a cache of an older dfdc: its parts by number
        index["folder"] = index["part"].astype(str)
    if cfg.by not in ("part", "cluster"):
        raise DfdcError(f"unknown fold grouping {cfg.by!r}; use 'part' (a folder) or 'cluster'")
    k = cfg.folds or (index["part"].nunique() if cfg.by == "part" else 5)
    index = assign_folds(index, k=k, by=cfg.by, seed=cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    log.info("cv: %d videos (%d REAL, %d FAKE), %d folds grouped by %s", len(index), (index["label"] == "REAL").sum(),
             (index["label"] == "FAKE").sum(), k, "folder (part)" if cfg.by == "part" else cfg.by)

    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = create_model("frame", backbone=cfg.backbone, pretrained=cfg.pretrained or False, pooling=cfg.pooling)
    base = CheckpointConfig.for_model(model, input_size=cfg.size, margin=float(settings.get("margin", CROP_MARGIN)),
                                      frames=int(settings["frames"]))
    model = model.to(device)
    key = {"cache": str(cache.resolve()), "videos": index["video"].tolist(), "n_faces": index["n_faces"].tolist(),
           "model": base.model, "kwargs": base.model_kwargs, "size": cfg.size}
    X = cached_features(out, key, lambda: crop_features(model, cache, index, cfg.size, base.mean, base.std, device,
                                                         cfg.batch_size))
    video_of = np.repeat(np.arange(len(index)), index["n_faces"].to_numpy())
    y_video = (index["label"] == "FAKE").to_numpy().astype(int)
    fold_of = index["fold"].to_numpy()

    frame_probs: list[np.ndarray] = [np.empty(0)] * len(index)
    heads, fit_rows = [], []
    for fold in range(k):
        train = fold_of[video_of] != fold
        head = _fit_head(X[train], y_video[video_of[train]], video_of[train], cfg.C)
        heads.append(head)
        p = head.predict_proba(X)[:, 1]
        for v in np.flatnonzero(fold_of == fold):
            frame_probs[v] = p[video_of == v]
        fit_rows.append({"fold": fold, "train_log_loss": _video_loss(p, video_of, y_video, fold_of != fold),
                         "val_log_loss": _video_loss(p, video_of, y_video, fold_of == fold)})

    # the aggregation with the lowest pooled out-of-fold balanced log loss (raw scores)
    by_aggregation = {name: np.array([video_score([fp], name) for fp in frame_probs]) for name in AGGREGATIONS}
    losses = {name: score_table(pd.DataFrame({"label": y_video, "p": np.clip(s, *CLIP)}))["balanced_log_loss"]
              for name, s in by_aggregation.items()}
    aggregation = min(AGGREGATIONS, key=lambda n: (round(losses[n], 4), n != AGGREGATION))
    raw = np.clip(by_aggregation[aggregation], *CLIP)

    calibrated = np.empty_like(raw)  # each fold calibrated by a map fitted on the other folds alone
    for fold in range(k):
        rest = fold_of != fold
        calibrated[~rest] = fit_calibrator(raw[rest], y_video[rest], prior=PRIOR, raw_prior=0.5)(raw[~rest])
    calibrator = fit_calibrator(raw, y_video, prior=PRIOR, raw_prior=0.5)

    oof = index[["video", "folder", "label", "fold"]].assign(label=y_video, p_raw=raw, p=calibrated)
    oof.to_csv(out / "oof.csv", index=False)
    summary = _summary(oof, cfg, k, aggregation, losses, calibrator, fit_rows)
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    reliability_diagram(raw, y_video, out / "reliability.png", calibrated=calibrated, prior=PRIOR)
    roc_curves(oof, out / "roc.png")
    cv_curves(pd.DataFrame(fit_rows).merge(pd.DataFrame(summary["folds"]), on="fold"), out / "curves.png")

    config = replace(base, aggregation=aggregation, calibrator=calibrator.to_dict())
    for fold, head in enumerate(heads):
        _save(out / "folds" / f"fold_{fold}.pt", model, head, config, {"fold": fold, "cv": asdict(cfg)})
    final = _fit_head(X, y_video[video_of], video_of, cfg.C)
    _save(out / "model.pt", model, final, config, {"cv": asdict(cfg), "pooled": summary["pooled"]})
    summary["model"] = str(out / "model.pt")
    return summary


def _fit_head(X: np.ndarray, y: np.ndarray, video: np.ndarray, C: float) -> "_Head":
    """Logistic regression on standardised features; each video weighs the same, and REAL and FAKE
    weigh half each, so the head's scores assume a 50/50 test set."""
    scaler = StandardScaler().fit(X)
    per_video = 1.0 / np.bincount(video)[video]
    weight = per_video / np.where(y == 1, per_video[y == 1].sum(), per_video[y == 0].sum())
    head = LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(X), y, sample_weight=weight * len(y))
    return _Head(scaler, head)


class _Head:
    """A fitted scaler + logistic regression, and the same as one torch linear layer."""

    def __init__(self, scaler: StandardScaler, lr: LogisticRegression) -> None:
        self.scaler, self.lr = scaler, lr

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.lr.predict_proba(self.scaler.transform(X))

    def linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (1, F), bias (1,)) of w . (x - mean) / scale + b, folded into one affine map."""
        w = self.lr.coef_[0] / self.scaler.scale_
        b = self.lr.intercept_[0] - float(np.dot(w, self.scaler.mean_))
        return torch.tensor(w[None], dtype=torch.float32), torch.tensor([b], dtype=torch.float32)


def _video_loss(p: np.ndarray, video_of: np.ndarray, y_video: np.ndarray, videos: np.ndarray) -> float | None:
    """Balanced log loss of the videos' mean frame scores (a training curve's point)."""
    chosen = np.flatnonzero(videos)
    means = np.array([p[video_of == v].mean() for v in chosen])
    return score_table(pd.DataFrame({"label": y_video[chosen], "p": np.clip(means, *CLIP)}))["balanced_log_loss"]


def _summary(oof: pd.DataFrame, cfg: CVConfig, k: int, aggregation: str, losses: dict, calibrator: Calibrator,
             fit_rows: list[dict]) -> dict:
    def scores(df: pd.DataFrame) -> dict:
        return {"raw": score_table(df.assign(p=df["p_raw"])), "calibrated": score_table(df)}

    folds = []
    for fold, df in oof.groupby("fold"):
        folds.append({"fold": int(fold), "folders": sorted(df["folder"].unique()), **scores(df)})
    return {
        "config": asdict(cfg), "folds_k": k, "grouped_by": "folder (part)" if cfg.by == "part" else cfg.by,
        "aggregation": aggregation, "aggregation_oof_balanced_log_loss": losses,
        "calibration": calibrator.to_dict(), "pooled": scores(oof),
        "per_folder": {name: scores(df) for name, df in oof.groupby("folder")},
        "folds": folds,
    }


def _save(path: Path, model: torch.nn.Module, head: _Head, config: CheckpointConfig, facts: dict) -> Path:
    weight, bias = head.linear()
    with torch.no_grad():
        model.fc.weight.copy_(weight)
        model.fc.bias.copy_(bias)
    return save_checkpoint(path, model.cpu(), replace(config, training=json.loads(json.dumps(facts))))
