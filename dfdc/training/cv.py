"""`dfdc cv`: grouped K-fold cross-validation of a frozen-backbone model, on real videos.

Every video gets one out-of-fold P(FAKE) from the model that never saw its fold; a fold is a whole
group (by default a folder of the data root: one dataset or identity group, so a face, a
compression copy or the other direction of a swap never sits on both sides). The backbone is
frozen, so its features are computed once (features.py) and each fold fits only the head: for the
frame model a logistic regression (scikit-learn; every video weighing the same, REAL and FAKE
balanced), for the sequence model its linear + ConvLSTM + FC layers over clips of the features
(Adam, a fixed number of epochs). Seconds per fold on a CPU, and the same result on a busy
machine as on a quiet one: the work is set by epochs, never by the clock.

From the pooled out-of-fold scores it chooses the aggregation (frame scores -> video score) and
fits the calibrator; each fold is also scored with a calibrator fitted on the other folds only, so
the per-fold calibrated figures are held out too. It writes the fold models (an ensemble `dfdc
predict` takes as a folder) and a final model fitted on every video, each a checkpoint holding the
calibrator and the aggregation.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ..defaults import AGGREGATION, CLIP, CLIP_FRAMES, CROP_MARGIN, PRIOR
from ..device import pick_device
from ..errors import DfdcError
from ..metadata import assign_folds
from ..models import create_model
from ..models.checkpoint import CheckpointConfig, save_checkpoint
from ..models.clips import clip_windows
from ..scores.aggregation import AGGREGATIONS, video_score
from ..scores.calibration import Calibrator, fit_calibrator, reliability_diagram
from ..scores.metrics import score_table
from .curves import cv_curves, roc_curves
from .dataset import BalancedSampler, read_index
from .features import cached_features, crop_features

log = logging.getLogger("dfdc")


@dataclass
class CVConfig:
    model: str = "frame"  # frame (logistic head) or sequence (the original design's ConvLSTM head)
    folds: int | None = None  # None: one fold per group (leave one folder out) when grouping by part, else 5
    by: str = "part"  # "part": a folder of the data root; "cluster": an original and its fakes
    backbone: str = "tf_efficientnet_lite0"
    pretrained: str | None = "lite0"
    pooling: str = "multiscale"  # frame model: what the head sees
    size: int = 224
    C: float = 0.003  # frame head: inverse L2 strength, on standardised features
    clip_length: int = CLIP_FRAMES  # sequence head: T
    epochs: int = 30  # sequence head
    lr: float = 1e-3  # sequence head
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
    if cfg.model not in HEADS:
        raise DfdcError(f"dfdc cv trains {' or '.join(HEADS)} models, not {cfg.model!r}")
    k = cfg.folds or (index["part"].nunique() if cfg.by == "part" else 5)
    index = assign_folds(index, k=k, by=cfg.by, seed=cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    log.info("cv: %s model, %d videos (%d REAL, %d FAKE), %d folds grouped by %s", cfg.model, len(index),
             (index["label"] == "REAL").sum(), (index["label"] == "FAKE").sum(), k,
             "folder (part)" if cfg.by == "part" else cfg.by)

    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    head_type = HEADS[cfg.model]
    model = head_type.create(cfg)
    base = CheckpointConfig.for_model(model, input_size=cfg.size, margin=float(settings.get("margin", CROP_MARGIN)),
                                      frames=int(settings["frames"]), **head_type.config(cfg))
    model = model.to(device)
    key = {"cache": str(cache.resolve()), "videos": index["video"].tolist(), "n_faces": index["n_faces"].tolist(),
           "model": base.model, "kwargs": base.model_kwargs, "size": cfg.size}
    X = cached_features(out, key, lambda: crop_features(model, cache, index, cfg.size, base.mean, base.std, device,
                                                         cfg.batch_size))
    feats = np.split(X, np.cumsum(index["n_faces"].to_numpy())[:-1])  # per video, its crops' features
    y = (index["label"] == "FAKE").to_numpy().astype(int)
    fold_of = index["fold"].to_numpy()

    unit_probs: list[np.ndarray] = [np.empty(0)] * len(index)  # per video: P(FAKE) per crop or clip
    heads, fit_rows = [], []
    for fold in range(k):
        train = np.flatnonzero(fold_of != fold)
        head = head_type.fit(model, [feats[v] for v in train], y[train], cfg)
        heads.append(head)
        scored = [head.scores(f) for f in feats]
        for v in np.flatnonzero(fold_of == fold):
            unit_probs[v] = scored[v]
        means = np.clip([p.mean() for p in scored], *CLIP)
        fit_rows.append({"fold": fold, "train_log_loss": _balanced(y, means, fold_of != fold),
                         "val_log_loss": _balanced(y, means, fold_of == fold), "history": head.history})

    # the aggregation with the lowest pooled out-of-fold balanced log loss (raw scores)
    by_aggregation = {name: np.array([video_score([p], name) for p in unit_probs]) for name in AGGREGATIONS}
    losses = {name: _balanced(y, np.clip(v, *CLIP), slice(None)) for name, v in by_aggregation.items()}
    aggregation = min(AGGREGATIONS, key=lambda n: (round(losses[n], 4), n != AGGREGATION))
    raw = np.clip(by_aggregation[aggregation], *CLIP)

    calibrated = np.empty_like(raw)  # each fold calibrated by a map fitted on the other folds alone
    for fold in range(k):
        rest = fold_of != fold
        calibrated[~rest] = fit_calibrator(raw[rest], y[rest], prior=PRIOR, raw_prior=0.5)(raw[~rest])
    calibrator = fit_calibrator(raw, y, prior=PRIOR, raw_prior=0.5)

    oof = index[["video", "folder", "fold"]].assign(label=y, p_raw=raw, p=calibrated)
    oof.to_csv(out / "oof.csv", index=False)
    summary = _summary(oof, cfg, k, aggregation, losses, calibrator)
    summary["training"] = fit_rows
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    reliability_diagram(raw, y, out / "reliability.png", calibrated=calibrated, prior=PRIOR)
    roc_curves(oof, out / "roc.png")
    cv_curves(pd.DataFrame(fit_rows).merge(pd.DataFrame(summary["folds"]), on="fold"), out / "curves.png")

    config = replace(base, aggregation=aggregation, calibrator=calibrator.to_dict())
    model = model.cpu()
    for fold, head in enumerate(heads):
        head.install(model)
        save_checkpoint(out / "folds" / f"fold_{fold}.pt", model, _with_facts(config, {"fold": fold, "cv": asdict(cfg)}))
    head_type.fit(model, feats, y, cfg).install(model)
    save_checkpoint(out / "model.pt", model, _with_facts(config, {"cv": asdict(cfg), "pooled": summary["pooled"]}))
    summary["model"] = str(out / "model.pt")
    return summary


class FrameHead:
    """Logistic regression on standardised crop features; each video weighs the same, and REAL and
    FAKE weigh half each, so the head's scores assume a 50/50 test set. The same map is one torch
    linear layer, the frame model's fc."""

    def __init__(self, scaler: StandardScaler, lr: LogisticRegression) -> None:
        self.scaler, self.lr = scaler, lr
        self.history: list[float] = []  # one closed-form fit: no epochs

    @staticmethod
    def create(cfg: CVConfig) -> torch.nn.Module:
        return create_model("frame", backbone=cfg.backbone, pretrained=cfg.pretrained or False, pooling=cfg.pooling)

    @staticmethod
    def config(cfg: CVConfig) -> dict:
        return {}

    @classmethod
    def fit(cls, model: torch.nn.Module, feats: list[np.ndarray], y: np.ndarray, cfg: CVConfig) -> "FrameHead":
        X = np.concatenate(feats)
        video = np.repeat(np.arange(len(feats)), [len(f) for f in feats])
        rows_y = y[video]
        scaler = StandardScaler().fit(X)
        per_video = 1.0 / np.bincount(video)[video]
        weight = per_video / np.where(rows_y == 1, per_video[rows_y == 1].sum(), per_video[rows_y == 0].sum())
        lr = LogisticRegression(C=cfg.C, max_iter=3000).fit(scaler.transform(X), rows_y, sample_weight=weight * len(X))
        return cls(scaler, lr)

    def scores(self, feats: np.ndarray) -> np.ndarray:
        return self.lr.predict_proba(self.scaler.transform(feats))[:, 1]

    def install(self, model: torch.nn.Module) -> None:
        """w . (x - mean) / scale + b, folded into the model's fc."""
        w = self.lr.coef_[0] / self.scaler.scale_
        b = self.lr.intercept_[0] - float(np.dot(w, self.scaler.mean_))
        with torch.no_grad():
            model.fc.weight.copy_(torch.tensor(w[None], dtype=torch.float32))
            model.fc.bias.copy_(torch.tensor([b], dtype=torch.float32))


class SequenceHead:
    """The sequence model's layers after the encoder (linear, ConvLSTM, FC), trained on clips of
    T consecutive cached samples of frozen features (models/clips.py), REAL:FAKE 1:1 per epoch."""

    def __init__(self, net: torch.nn.Module, history: list[float], length: int) -> None:
        self.net, self.history, self.length = net.eval(), history, length

    @staticmethod
    def create(cfg: CVConfig) -> torch.nn.Module:
        return create_model("sequence", backbone=cfg.backbone, pretrained=cfg.pretrained or False)

    @staticmethod
    def config(cfg: CVConfig) -> dict:
        return {"clip_length": cfg.clip_length}

    @classmethod
    def fit(cls, model: torch.nn.Module, feats: list[np.ndarray], y: np.ndarray, cfg: CVConfig) -> "SequenceHead":
        torch.manual_seed(cfg.seed)
        head = copy.deepcopy(model).cpu()  # a fresh head of the same shape for every fold
        for module in (head.reduce, head.lstm, head.head):
            for layer in module.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        params = [p for m in (head.reduce, head.lstm, head.head) for p in m.parameters()]
        optimizer = torch.optim.Adam(params, lr=cfg.lr)
        T, per_video = cfg.clip_length, 3
        labels = np.repeat(y, per_video)
        sampler = BalancedSampler(labels, cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        history = []
        for epoch in range(cfg.epochs):
            head.train()
            sampler.set_epoch(epoch)
            order = np.array(list(sampler))
            losses = []
            for start in range(0, len(order), 16):
                items = order[start:start + 16] // per_video
                clips = []
                for v in items:
                    n = len(feats[v])
                    s = int(rng.integers(0, max(0, n - T) + 1))
                    clips.append(feats[v][np.minimum(np.arange(s, s + T), n - 1)])
                x = torch.from_numpy(np.stack(clips))
                loss = loss_fn(head.head_forward(x), torch.from_numpy(y[items].astype(np.float32)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            history.append(float(np.mean(losses)))
        return cls(head, history, T)

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """P(FAKE) of every window predict cuts from these samples."""
        with torch.inference_mode():
            x = torch.from_numpy(np.stack([feats[w] for w in clip_windows(len(feats), self.length)]))
            return torch.sigmoid(self.net.head_forward(x)).numpy()

    def install(self, model: torch.nn.Module) -> None:
        trained = {k: v for k, v in self.net.state_dict().items() if not k.startswith("encoder.")}
        model.load_state_dict({**model.state_dict(), **trained})


HEADS = {"frame": FrameHead, "sequence": SequenceHead}


def _balanced(y: np.ndarray, p: np.ndarray, rows) -> float | None:
    """Balanced log loss of these videos' scores."""
    return score_table(pd.DataFrame({"label": y[rows], "p": np.asarray(p)[rows]}))["balanced_log_loss"]


def _summary(oof: pd.DataFrame, cfg: CVConfig, k: int, aggregation: str, losses: dict, calibrator: Calibrator) -> dict:
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


def _with_facts(config: CheckpointConfig, facts: dict) -> CheckpointConfig:
    return replace(config, training=json.loads(json.dumps(facts)))
