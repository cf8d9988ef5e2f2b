"""`dfdc cv`: grouped K-fold cross-validation on real videos, cheap enough for a CPU.

Every video gets one out-of-fold P(FAKE) from the model that never saw its fold; a fold is a whole
group (by default a folder of the data root: one dataset or identity group, so a face, a compression
copy or the other direction of a swap never sits on both sides). What the backbone computes before
the trained part is the same in every fold, so it is computed once (features.py) and each fold
trains only the rest: the frame model's last blocks fine-tuned on pairs of a fake and a real crop
(`tune` > 0, about 80 s per fold of the real set on 2 CPU cores), or on a wholly frozen backbone a
logistic regression (scikit-learn; every video weighing the same, REAL and FAKE balanced), or the
sequence model's linear + ConvLSTM + FC layers over clips of the features. The same result on a busy
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
from typing import Callable

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from ..defaults import (
    AGGREGATION,
    ALIGN,
    CLIP,
    CLIP_FRAMES,
    CROP_MARGIN,
    POOLING,
    PRIOR,
    SELF_BLENDS,
    TUNE_BLOCKS,
    TUNE_VIEWS,
)
from ..device import fast_layout, inference_dtype, pick_device, reproducible
from ..errors import DfdcError
from ..metadata import assign_folds
from ..models import create_model
from ..models.align import track_stats
from ..models.checkpoint import CheckpointConfig, save_checkpoint
from ..models.clips import clip_windows
from ..scores.aggregation import AGGREGATIONS, video_score
from ..scores.calibration import Calibrator, fit_calibrator, logit, reliability_diagram
from ..scores.matching import fifty_fifty_log_loss, match_prior, matched_to_groups
from ..scores.metrics import figure, score_table
from .augment import ClipAugment
from .curves import cv_curves, roc_curves
from .dataset import BalancedSampler, FrameDataset, read_index
from .features import cached_features, crop_features

log = logging.getLogger("dfdc")


@dataclass
class CVConfig:
    model: str = "frame"  # frame (logistic head) or sequence (the original design's ConvLSTM head)
    folds: int | None = None  # None: one fold per group (leave one folder out) when grouping by part, else 5
    by: str = "part"  # "part": a folder of the data root; "cluster": an original and its fakes
    backbone: str = "tf_efficientnet_lite0"
    pretrained: str | None = "lite0"
    pooling: str | None = None  # frame model: what the head sees (None: POOLING fine-tuned, multiscale frozen)
    size: int = 224
    C: float = 0.003  # frame head: inverse L2 strength, on standardised features
    tune: int = TUNE_BLOCKS  # frame model: backbone blocks fine-tuned per fold (0: all frozen, a logistic head)
    views: int = TUNE_VIEWS  # fine-tuning: cached views per crop (as predict sees it, then augmented draws)
    blends: int = SELF_BLENDS  # fine-tuning: self-blended fakes cached per crop, each shown beside its REAL source
    align: bool = ALIGN  # fine-tuned frame model: the maps before the tuned blocks aligned per track (models/align.py)
    clip_length: int = CLIP_FRAMES  # sequence head: T
    epochs: int | None = None  # sequence head or fine-tuning (None: the head's own default)
    lr: float | None = None  # sequence head or fine-tuning (None: the head's own default)
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
    for fold in range(k):
        labels = set(index.loc[index["fold"] != fold, "label"])
        if labels != {"REAL", "FAKE"}:
            raise DfdcError(f"cannot cross-validate: the training videos of fold {fold} are all "
                            f"{''.join(labels) or 'missing'} (grouped by {cfg.by}); use fewer --folds or another --fold-by",
                            cache)
    if cfg.align and not (cfg.tune and cfg.model == "frame"):
        log.info("cv: per-track alignment is for the fine-tuned frame model (--tune > 0); not used")
        cfg = replace(cfg, align=False)
    if cfg.pooling is None:
        cfg = replace(cfg, pooling=POOLING if cfg.tune and cfg.model == "frame" else "multiscale")
    device = pick_device(cfg.device)
    reproducible(device)
    torch.manual_seed(cfg.seed)
    head_type = (TUNED_HEADS if cfg.tune else HEADS)[cfg.model]
    margin = float(settings.get("margin", CROP_MARGIN))
    model = head_type.create(cfg, margin)
    base = CheckpointConfig.for_model(model, input_size=cfg.size, margin=margin,
                                      frames=int(settings["frames"]), **head_type.config(cfg))
    # features as predict computes them (BatchNorm statistics, no dropout), in the device's fastest layout
    model = fast_layout(model.to(device), device).eval()
    features = head_type.features(model, cfg)  # a bad --tune or --views fails here, before anything is written
    out.mkdir(parents=True, exist_ok=True)
    log.info("cv: %s model, %d videos (%d REAL, %d FAKE), %d folds grouped by %s", cfg.model, len(index),
             (index["label"] == "REAL").sum(), (index["label"] == "FAKE").sum(), k,
             "folder (part)" if cfg.by == "part" else cfg.by)

    views, blends = (cfg.views, cfg.blends) if cfg.tune else (1, 0)
    augment = ClipAugment(cfg.size, tuple(base.mean), tuple(base.std), margin=base.margin)
    key = {"cache": str(cache.resolve()), "videos": index["video"].tolist(), "n_faces": index["n_faces"].tolist(),
           "model": base.model, "kwargs": base.model_kwargs, "size": cfg.size, "tune": cfg.tune, "views": views,
           "seed": cfg.seed, "augment": asdict(augment), "dtype": str(inference_dtype(device))}
    X = cached_features(out, key, lambda: crop_features(
        features, cache, index, [replace(augment, train=False)] + [augment] * (views - 1), device,
        seed=cfg.seed, batch_size=cfg.batch_size))
    X = X if cfg.tune else X[:, 0]  # the frozen heads take one view: (crops, F)
    feats = _per_video(X, index)
    if blends:  # REAL videos' crops get more views: self-blended fakes made from them
        reals = np.flatnonzero(index["label"] == "REAL")
        B = cached_features(out, {**key, "blends": blends}, lambda: crop_features(
            features, cache, index.iloc[reals], [replace(augment, p_blend=1.0)] * blends, device,
            seed=cfg.seed + views, batch_size=cfg.batch_size))
        for v, b in zip(reals, _per_video(B, index.iloc[reals])):
            feats[v] = np.concatenate([feats[v], b], 1)
    data = FrameDataset(cache, index)
    index["frames"] = [data.frames(row)[1] for row in range(len(index))]  # sampled frames of the main track
    y = (index["label"] == "FAKE").to_numpy().astype(int)
    fold_of = index["fold"].to_numpy()

    unit_probs: list[np.ndarray] = [np.empty(0)] * len(index)  # per video: P(FAKE) per crop or clip
    heads, fit_rows = [], []
    for fold in range(k):
        train = np.flatnonzero(fold_of != fold)
        head = head_type.fit(model, [feats[v] for v in train], y[train], cfg, index.iloc[train])
        heads.append(head)
        held_out = np.flatnonzero(fold_of == fold)
        for v in held_out:
            unit_probs[v] = head.scores(feats[v])
        # how well the fold fits its own training videos (a diagnostic): on a run of each one's crops
        fitted = [head.scores(_middle(feats[v], FIT_CROPS)).mean() for v in train]
        held = [unit_probs[v].mean() for v in held_out]
        fit_rows.append({"fold": fold, "train_log_loss": _balanced(y[train], np.clip(fitted, *CLIP), slice(None)),
                         "val_log_loss": _balanced(y[held_out], np.clip(held, *CLIP), slice(None)),
                         "history": head.history})

    # the aggregation with the lowest pooled out-of-fold balanced log loss (raw scores)
    by_aggregation = {name: np.array([video_score([p], name) for p in unit_probs]) for name in AGGREGATIONS}
    losses = {name: _balanced(y, np.clip(v, *CLIP), slice(None)) for name, v in by_aggregation.items()}
    aggregation = min(AGGREGATIONS, key=lambda n: (round(losses[n], 4), n != AGGREGATION))
    raw = np.clip(by_aggregation[aggregation], *CLIP)

    calibrated = np.empty_like(raw)  # each fold calibrated by a map fitted and chosen on the other folds alone
    for fold in range(k):
        rest = fold_of != fold
        calibrated[~rest] = fit_calibrator(raw[rest], y[rest], prior=PRIOR, raw_prior=0.5,
                                           groups=fold_of[rest])(raw[~rest])
    calibrator = fit_calibrator(raw, y, prior=PRIOR, raw_prior=0.5, groups=fold_of)  # chosen for unseen groups
    matched = _matched_calibrator(raw, y, fold_of)

    oof = index[["video", "folder", "fold"]].assign(label=y, p_raw=raw, p=calibrated)
    oof.to_csv(out / "oof.csv", index=False)
    summary = _summary(oof, cfg, k, aggregation, losses, calibrator)
    summary["matched"] = _matched_figures(oof, matched)
    summary["training"] = fit_rows
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    reliability_diagram(raw, y, out / "reliability.png", calibrated=calibrated, prior=PRIOR)
    roc_curves(oof, out / "roc.png")
    cv_curves(pd.DataFrame(fit_rows).merge(pd.DataFrame(summary["folds"]), on="fold"), out / "curves.png")

    config = replace(base, aggregation=aggregation, calibrator=calibrator.to_dict(),
                     matched_calibrator=matched(None).to_dict())
    final = head_type.fit(model, feats, y, cfg, index)  # from the start model, as every fold was
    model = model.cpu()
    for fold, head in enumerate(heads):
        head.install(model)
        save_checkpoint(out / "folds" / f"fold_{fold}.pt", model, _with_facts(config, {"fold": fold, "cv": asdict(cfg)}))
    final.install(model)
    save_checkpoint(out / "model.pt", model, _with_facts(config, {"cv": asdict(cfg), "pooled": summary["pooled"]}))
    summary["model"] = str(out / "model.pt")
    return summary


class Head:
    """What every head shares unless it says otherwise: it trains on what `model.features` gives,
    and adds nothing to the checkpoint's config."""

    @staticmethod
    def config(cfg: CVConfig) -> dict:
        return {}

    @staticmethod
    def features(model: torch.nn.Module, cfg: CVConfig) -> Callable[[torch.Tensor], torch.Tensor]:
        return model.features


class FrameHead(Head):
    """Logistic regression on standardised crop features; each video weighs the same, and REAL and
    FAKE weigh half each, so the head's scores assume a 50/50 test set. The same map is one torch
    linear layer, the frame model's fc."""

    def __init__(self, scaler: StandardScaler, lr: LogisticRegression) -> None:
        self.scaler, self.lr = scaler, lr
        self.history: list[float] = []  # one closed-form fit: no epochs

    @staticmethod
    def create(cfg: CVConfig, margin: float) -> torch.nn.Module:
        return create_model("frame", backbone=cfg.backbone, pretrained=cfg.pretrained or False, pooling=cfg.pooling,
                            margin=margin)

    @classmethod
    def fit(cls, model: torch.nn.Module, feats: list[np.ndarray], y: np.ndarray, cfg: CVConfig,
            videos: pd.DataFrame) -> "FrameHead":
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


class SequenceHead(Head):
    """The sequence model's layers after the encoder (linear, ConvLSTM, FC), trained on clips of
    T consecutive cached samples of frozen features (models/clips.py), REAL:FAKE 1:1 per epoch."""

    def __init__(self, net: torch.nn.Module, history: list[float], length: int) -> None:
        self.net, self.history, self.length = net.eval(), history, length

    @staticmethod
    def create(cfg: CVConfig, margin: float) -> torch.nn.Module:
        """margin: where the face lies in a crop, which the sequence model, pooling whole maps, does not use."""
        return create_model("sequence", backbone=cfg.backbone, pretrained=cfg.pretrained or False)

    @staticmethod
    def config(cfg: CVConfig) -> dict:
        return {"clip_length": cfg.clip_length}

    @classmethod
    def fit(cls, model: torch.nn.Module, feats: list[np.ndarray], y: np.ndarray, cfg: CVConfig,
            videos: pd.DataFrame) -> "SequenceHead":
        torch.manual_seed(cfg.seed)
        head = copy.deepcopy(model).cpu()  # a fresh head of the same shape for every fold
        for module in (head.reduce, head.lstm, head.head):
            for layer in module.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        params = [p for m in (head.reduce, head.lstm, head.head) for p in m.parameters()]
        optimizer = torch.optim.Adam(params, lr=cfg.lr or SEQUENCE_LR)
        T, per_video = cfg.clip_length, 3
        labels = np.repeat(y, per_video)
        sampler = BalancedSampler(labels, cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        history = []
        for epoch in range(cfg.epochs or SEQUENCE_EPOCHS):
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
                target = torch.from_numpy(y[items].astype(np.float32))
                losses.append(_step(optimizer, loss_fn(head.head_forward(x), target)))
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


# The sequence head on frozen features: epochs and learning rate.
SEQUENCE_EPOCHS, SEQUENCE_LR = 30, 1e-3


class TunedHead(Head):
    """The frame model's last `tune` backbone blocks, head convolution and fc, fine-tuned on cached
    maps of the blocks before (several augmented views per crop), with BatchNorm statistics kept.

    Each step shows FAKE crops beside a REAL partner: the fake's own original at the nearest
    sampled frame when that is among the training videos (same person, scene, camera and
    compression: only the manipulation differs), else a REAL crop of the same folder (the same
    dataset's capture and encoding). The loss is BCE plus a ranking term asking each fake to score
    above its partner, so the model learns what the manipulation changed, not who or where. With
    `blends`, every REAL training video also serves as the source of self-blended fakes (blend.py),
    each shown beside the very crop it was made from: only the blend's seam differs, the one trace
    face swaps of every method and dataset share. With `align`, every view of a video's maps is first
    standardised per channel by that video's own statistics (view 0: its crops as predict sees them)
    and put at the fold's training videos' pooled mean and SD (models/align.py), as predict does per
    track: what the camera, light and encoding shift in a whole video is taken out before the tuned blocks.
    """

    def __init__(self, net: torch.nn.Module, history: list[float], block: int) -> None:
        self.net, self.history, self.block = net.eval(), history, block

    @staticmethod
    def create(cfg: CVConfig, margin: float) -> torch.nn.Module:
        return create_model("frame", backbone=cfg.backbone, pretrained=cfg.pretrained or False, pooling=cfg.pooling,
                            align_block=-cfg.tune if cfg.align else None, margin=margin)

    @staticmethod
    def features(model: torch.nn.Module, cfg: CVConfig) -> Callable[[torch.Tensor], torch.Tensor]:
        block = _first_tuned_block(model, cfg)
        return lambda x: model.early(x, block)

    @classmethod
    def fit(cls, model: torch.nn.Module, feats: list[np.ndarray], y: np.ndarray, cfg: CVConfig,
            videos: pd.DataFrame) -> "TunedHead":
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        net = copy.deepcopy(model).eval()  # tuned where the model is: a GPU's minutes are a CPU's hours
        device = next(net.parameters()).device
        block = _first_tuned_block(net, cfg)
        params = net.late_parameters(block)
        optimizer = torch.optim.AdamW(params, lr=cfg.lr or TUNE_LR, weight_decay=1e-2)
        fakes = np.flatnonzero(y == 1)
        reals = np.flatnonzero(y == 0) if cfg.blends else np.empty(0, int)  # sources of self-blended fakes
        partner = _partners(videos, y, rng)
        if net.align is not None:  # each video's maps by its own statistics (the crops as predict sees them)
            stats = [track_stats(torch.from_numpy(f[:, 0])) for f in feats]
            net.align.fit(stats)
            means, stds = (torch.stack(s).to(device) for s in zip(*stats))
        history = []
        for _ in range(cfg.epochs or TUNE_EPOCHS):
            net.train()
            for m in net.modules():  # BatchNorm keeps its ImageNet statistics: batches of 32 are too few
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
            pairs = [(v, c) for v in fakes for c in rng.permutation(len(feats[v]))[:TUNE_CROPS]]
            pairs += [(v, c) for v in reals for c in rng.permutation(len(feats[v]))[:BLEND_CROPS]]
            pairs = [pairs[i] for i in rng.permutation(len(pairs))]
            losses = []
            for start in tqdm(range(0, len(pairs), TUNE_PAIRS), desc="fine-tuning", unit="step", leave=False):
                batch, of = [], []
                for v, c in pairs[start:start + TUNE_PAIRS]:
                    views = rng.integers(0, cfg.views, 2)
                    if y[v]:
                        u, d = partner(v, c)
                        batch += [feats[v][c, views[0]], feats[u][d, views[1]]]
                        of += [v, u]
                    else:  # a self-blended fake of this REAL crop, beside the crop itself
                        batch += [feats[v][c, cfg.views + rng.integers(cfg.blends)], feats[v][c, views[1]]]
                        of += [v, v]
                x = torch.from_numpy(np.stack(batch).astype(np.float32)).to(device)
                if net.align is not None:
                    x = net.align.apply_stats(x, means[of], stds[of])
                target = torch.tensor([1.0, 0.0] * (len(batch) // 2), device=device)
                logits = net.late(x, block)
                losses.append(_step(optimizer, torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
                                    + torch.nn.functional.softplus(logits[1::2] - logits[0::2]).mean()))
            history.append(float(np.mean(losses)))
        return cls(net, history, block)

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """P(FAKE) per crop of one video, on its crops as predict sees them (view 0)."""
        with torch.inference_mode():
            return torch.sigmoid(self.net.late(self._view0(feats), self.block)).cpu().numpy()

    def pooled(self, feats: np.ndarray) -> np.ndarray:
        """(crops, F) pooled features of the tuned backbone, on one video's crops as predict sees them (view 0)."""
        with torch.inference_mode():
            return self.net.late_features(self._view0(feats), self.block).cpu().numpy()

    def _view0(self, feats: np.ndarray) -> torch.Tensor:
        """The video's view 0 maps, aligned as one track where the model aligns."""
        x = torch.from_numpy(feats[:, 0].astype(np.float32)).to(next(self.net.parameters()).device)
        return x if self.net.align is None else self.net.align(x)

    def install(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.net.state_dict())


class TunedSequenceHead:
    """The original design on a fine-tuned encoder: the encoder's last blocks are tuned per fold as
    the frame model's (TunedHead, with a per-crop fc used only for that), then the sequence head
    (Linear + ConvLSTM + FC) learns clips of the tuned encoder's pooled features (SequenceHead)."""

    def __init__(self, tuned: TunedHead, sequence: SequenceHead) -> None:
        self.tuned, self.sequence = tuned, sequence
        self.history = tuned.history + sequence.history  # fine-tuning epochs, then the sequence head's

    create = staticmethod(SequenceHead.create)
    config = staticmethod(SequenceHead.config)

    @staticmethod
    def features(model: torch.nn.Module, cfg: CVConfig) -> Callable[[torch.Tensor], torch.Tensor]:
        return TunedHead.features(_frame_twin(model, cfg), cfg)

    @classmethod
    def fit(cls, model: torch.nn.Module, feats: list[np.ndarray], y: np.ndarray, cfg: CVConfig,
            videos: pd.DataFrame) -> "TunedSequenceHead":
        tuned = TunedHead.fit(_frame_twin(model, cfg), feats, y, cfg, videos)
        sequence = SequenceHead.fit(model, [tuned.pooled(f) for f in feats], y,
                                    replace(cfg, epochs=None, lr=None), videos)
        return cls(tuned, sequence)

    def scores(self, feats: np.ndarray) -> np.ndarray:
        return self.sequence.scores(self.tuned.pooled(feats))

    def install(self, model: torch.nn.Module) -> None:
        self.sequence.install(model)
        model.encoder.load_state_dict(self.tuned.net.encoder.state_dict())


# Crops of each training video scored for the training-fold figure: a consecutive run (a sequence head's
# clip), so that figure costs a third of scoring every crop, and the held-out scores are untouched.
FIT_CROPS = 10


def _middle(feats: np.ndarray, n: int) -> np.ndarray:
    """The n consecutive crops at the middle of a video's (all of them when it has no more)."""
    start = max(0, (len(feats) - n) // 2)
    return feats[start:start + n]


def _per_video(X: np.ndarray, index: pd.DataFrame) -> list[np.ndarray]:
    """(crops, ...) features of these videos' crops, in index order -> one array per video."""
    return np.split(X, np.cumsum(index["n_faces"].to_numpy())[:-1])


def _first_tuned_block(model: torch.nn.Module, cfg: CVConfig) -> int:
    """The first of the backbone's blocks that fine-tuning trains (its last `cfg.tune`)."""
    blocks = len(model.encoder.blocks)
    if cfg.blends < 0:
        raise DfdcError(f"--blends must be at least 0, not {cfg.blends}")
    if not 1 <= cfg.tune <= blocks or cfg.views < 1:
        raise DfdcError(f"--tune must be within 1..{blocks} (the blocks of {cfg.backbone}) and --views at least 1, "
                        f"not {cfg.tune} and {cfg.views}")
    return blocks - cfg.tune


def _frame_twin(model: torch.nn.Module, cfg: CVConfig) -> torch.nn.Module:
    """A frame model holding `model`'s encoder weights, on its device: what TunedHead tunes."""
    twin = create_model("frame", backbone=cfg.backbone, pretrained=False, pooling="last")
    twin.encoder.load_state_dict(model.encoder.state_dict())
    device = next(model.parameters()).device
    return fast_layout(twin.to(device), device).eval()


# Fine-tuning: epochs, learning rate, crops drawn per FAKE video per epoch, pairs per step (a batch of 2x).
TUNE_EPOCHS, TUNE_LR, TUNE_CROPS, TUNE_PAIRS = 3, 3e-4, 16, 16
BLEND_CROPS = 8  # crops of each REAL video made a self-blended fake per epoch


def _partners(videos: pd.DataFrame, y: np.ndarray, rng: np.random.Generator):
    """(fake video, crop) -> (REAL video, crop): its original at the nearest sampled frame when the
    original is among these videos, else a random crop of a random REAL video of its folder (of any
    folder when its folder has none)."""
    row = {name: i for i, name in enumerate(videos["video"])}
    reals = np.flatnonzero(y == 0)
    by_folder = {f: reals[videos["folder"].to_numpy()[reals] == f] for f in videos["folder"].unique()}
    frames = videos["frames"].tolist()

    def partner(v: int, c: int) -> tuple[int, int]:
        o = row.get(videos["original"].iat[v], -1)
        if o >= 0 and y[o] == 0:
            return o, int(np.argmin(np.abs(np.asarray(frames[o]) - frames[v][c])))
        pool = by_folder.get(videos["folder"].iat[v])
        u = int(rng.choice(pool if pool is not None and len(pool) else reals))
        return u, int(rng.integers(len(frames[u])))
    return partner


HEADS = {"frame": FrameHead, "sequence": SequenceHead}  # on a frozen backbone
TUNED_HEADS = {"frame": TunedHead, "sequence": TunedSequenceHead}  # with the backbone's last blocks tuned


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimiser step on this loss; its value."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


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


def _matched_calibrator(raw: np.ndarray, y: np.ndarray, fold_of: np.ndarray) -> Callable[[int | None], Calibrator]:
    """fold -> the map for test-set prior matching, fitted on the other folds' scores (None: on all),
    each fold's logits first shifted to its own FAKE fraction as matching would shift them."""
    def fit(fold: int | None) -> Calibrator:
        rest = fold_of != fold
        z = matched_to_groups(logit(raw[rest]), y[rest], fold_of[rest])
        return fit_calibrator(z, y[rest], prior=PRIOR, logits=True)

    return fit


def _matched_figures(oof: pd.DataFrame, matched: Callable[[int | None], Calibrator]) -> dict:
    """Per fold, the mean log loss over random 50/50 test sets of its videos: raw, calibrated as
    without matching, and matched (the fold's matched map, fitted on the other folds, then the
    set shifted to mean 0.5); and the mean over the folds with both classes. `pooled`: every fold
    matched as a whole to its own FAKE fraction (a test set whose balance is known), then pooled."""
    rows, pooled = [], oof["p_raw"].copy()
    for fold, df in oof.groupby("fold"):
        cal = matched(int(fold))
        y = df["label"].to_numpy()
        if 0 < y.mean() < 1:
            pooled[df.index] = match_prior(cal(df["p_raw"]), float(y.mean()), cal.clip)
        figures = {
            "raw": fifty_fifty_log_loss(df["p_raw"], y, lambda p: p),
            "calibrated": fifty_fifty_log_loss(df["p"], y, lambda p: p),
            "matched": fifty_fifty_log_loss(df["p_raw"], y, lambda p: match_prior(cal(p), PRIOR, cal.clip)),
        }
        rows.append({"fold": int(fold), "folders": sorted(df["folder"].unique()), "method": cal.method, **figures})
    both = [r for r in rows if r["raw"] is not None]
    mean = {name: float(np.mean([r[name] for r in both])) for name in ("raw", "calibrated", "matched")} if both else {}
    return {"prior": PRIOR, "draws": "all of the rarer class and as many of the other, 200 draws per fold",
            "mean_over_folds": mean, "folds": rows,
            "pooled": score_table(pd.DataFrame({"label": oof["label"], "p": pooled}))}


def summary_lines(s: dict) -> list[str]:
    """What a run found (its summary), in the lines `dfdc cv` and `dfdc demo` print."""
    lines = []
    for name in ("raw", "calibrated"):
        t = s["pooled"][name]
        lines.append(f"{name}, out of fold on {t['n']} videos, {s['folds_k']} folds grouped by {s['grouped_by']}: "
                     f"balanced log loss {figure(t['balanced_log_loss'])} (chance 0.6931), "
                     f"log loss {figure(t['log_loss'])}, AUC {figure(t['auc'], 3)}, "
                     f"accuracy {figure(t['accuracy'], 3)}")
    m = s["matched"]["mean_over_folds"]
    if m:
        t = s["matched"]["pooled"]
        lines += [f"50/50 test sets drawn from each fold, mean over folds: log loss {figure(m['raw'])} raw, "
                  f"{figure(m['calibrated'])} calibrated, {figure(m['matched'])} matched to the known balance "
                  f"(predict --match-prior, as the Kaggle kernel runs)",
                  f"each fold matched to its own known balance, pooled: balanced log loss "
                  f"{figure(t['balanced_log_loss'])}, AUC {figure(t['auc'], 3)}"]
    return lines + [f"aggregation {s['aggregation']}, calibration {s['calibration']['method']}"]


def _with_facts(config: CheckpointConfig, facts: dict) -> CheckpointConfig:
    return replace(config, training=json.loads(json.dumps(facts)))
