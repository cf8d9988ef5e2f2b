"""`dfdc train`: face cache -> a checkpoint that `dfdc predict` takes as it is.

One loop, short enough to read in one sitting (in the spirit of nanoGPT): Adam, a cosine
learning-rate schedule, gradient clipping, mixed precision on CUDA, REAL:FAKE drawn 1:1, a
validation log loss per video that matches a 50/50 test set, the best and the last checkpoint
saved atomically, a clean stop before --time-limit, --resume, and DDP under torchrun.

Every epoch's randomness is seeded from (seed, epoch), and the last checkpoint is written at
each epoch's end: a resumed run repeats exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from ..atomic import atomic_path
from ..defaults import (
    AGGREGATION,
    CACHE_FRAMES,
    CLIP_FRAMES,
    CROP_MARGIN,
    CROP_SIZE,
    SELF_BLENDS,
    TRAIN_POOLING,
)
from ..device import fast_layout, pick_device, reproducible
from ..errors import DfdcError
from ..models import create_model
from ..models.checkpoint import CheckpointConfig, save_checkpoint
from ..models.torchfile import load_file
from ..scores.aggregation import get_aggregation, video_score
from ..scores.metrics import score_table
from .augment import ClipAugment
from .curves import training_curves
from .dataset import BalancedSampler, ClipDataset, FrameDataset, read_index, split_folds

log = logging.getLogger("dfdc")


@dataclass
class TrainConfig:
    model: str = "sequence"
    backbone: str = "efficientnet_b0"
    pretrained: str | None = None  # "lite0" or a state dict file
    frames: int = CLIP_FRAMES  # clip length T (sequence models)
    size: int = CROP_SIZE
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    fold: int = 0
    folds: int = 5
    fold_by: str = "cluster"  # cluster: a fake and its original are never split; part: a folder never is
    time_limit: float | None = None
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    aggregation: str = AGGREGATION  # frame model: how validation frames make a video score; predict does the same
    blends: int = SELF_BLENDS  # self-blended fakes made from each REAL training item per epoch (training/blend.py)
    pooling: str = TRAIN_POOLING  # frame model: what the head sees of the last map (models/frame.py)


class ShardSampler(Sampler[int]):
    """Each DDP process takes every world-th item of the balanced order (padded to equal length)."""

    def __init__(self, base: BalancedSampler, rank: int, world: int) -> None:
        self.base, self.rank, self.world = base, rank, world

    def __len__(self) -> int:
        return math.ceil(len(self.base) / self.world)

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __iter__(self):
        order = list(self.base)
        order += order[: len(self) * self.world - len(order)]
        return iter(order[self.rank::self.world])


def _distributed() -> tuple[int, int]:
    """(rank, world size), joining the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _device(name: str, rank: int) -> torch.device:
    """This process's device; under DDP on CUDA the GPU of its local rank, made current, since
    NCCL collectives such as all_gather_object work on the current device."""
    device = pick_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    reproducible(device)
    return device


def _datasets(cache: Path, cfg: TrainConfig, kind: str, mean, std, margin: float, cached_frames: int):
    """Training data (every crop, or cached_frames // T random clips per video) and validation
    data (every crop, or every window predict will cut)."""
    train_idx, val_idx = split_folds(read_index(cache), cfg.fold, cfg.folds, by=cfg.fold_by)
    if val_idx.empty or train_idx.empty:
        raise DfdcError(f"fold {cfg.fold} leaves an empty training or validation set", cache)
    aug = ClipAugment(cfg.size, tuple(mean), tuple(std), train=True, margin=margin)
    plain = ClipAugment(cfg.size, tuple(mean), tuple(std), train=False, margin=margin)
    if kind == "sequence":
        per_video = max(1, cached_frames // cfg.frames)
        return (ClipDataset(cache, train_idx, cfg.frames, aug, clips_per_video=per_video, blends=cfg.blends),
                ClipDataset(cache, val_idx, cfg.frames, plain, random_start=False))
    return FrameDataset(cache, train_idx, aug, blends=cfg.blends), FrameDataset(cache, val_idx, plain)


@torch.inference_mode()
def validate(model: nn.Module, data, cfg: TrainConfig, device: torch.device) -> pd.DataFrame:
    """One P(FAKE) per validation video: its clip's, or its frames' aggregated as predict will."""
    model.eval()
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=False, num_workers=0)
    bar = tqdm(loader, desc="validation", unit="batch", leave=False, disable=None)
    probs = torch.cat([torch.sigmoid(model(x.to(device)).float()).cpu() for x, _ in bar]).numpy()
    # items run video by video (crops, or clip windows): split them back by video
    counts = data.windows_per_video if isinstance(data, ClipDataset) else data.index["n_faces"].to_numpy()
    scores = [video_score([p], cfg.aggregation) for p in np.split(probs, np.cumsum(counts)[:-1])]
    return pd.DataFrame({"video": data.index["video"], "label": (data.index["label"] == "FAKE").astype(int),
                         "p": np.asarray(scores, float)})


def _scores(preds: pd.DataFrame) -> dict:
    """Validation scores per video; balanced log loss (REAL and FAKE averaged) picks the best epoch."""
    table = score_table(preds)
    return {f"val_{k}": table[k] for k in ("balanced_log_loss", "log_loss", "auc", "accuracy")}


def warmup_cosine(total: int, warmup: float = 0.05, floor: float = 0.05):
    """Learning-rate factor per step: a short linear warm-up, then a cosine down to `floor`."""
    warm = max(1, int(warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        done = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))

    return factor


def _past(limit: float | None, started: float, ahead: float, world: int, device: torch.device) -> bool:
    """Whether `ahead` more seconds would pass the time limit; under DDP all processes agree
    (one stopping alone would leave the others waiting on it forever)."""
    if limit is None:
        return False
    past = time.monotonic() - started + ahead > limit
    if world > 1:
        flag = torch.tensor([float(past)], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        past = bool(flag.item())
    return past


STATE_KEYS = {"model", "optimizer", "scheduler", "scaler", "epoch", "history", "config", "best"}


def _state(model, optimizer, scheduler, scaler, epoch: int, history: list, cfg: TrainConfig, best: float) -> dict:
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch, "history": history, "config": asdict(cfg), "best": best}


def _save_state(path: Path, state: dict) -> None:
    with atomic_path(path, fsync=True) as tmp:
        torch.save(state, tmp)


def _weights_digest(model: nn.Module) -> float:
    """A cheap fingerprint of the weights, to check that DDP processes agree."""
    return float(sum(p.detach().double().sum().item() * (i + 1) for i, p in enumerate(model.parameters())))


def train(cache: str | Path, out: str | Path, cfg: TrainConfig, resume: bool = False,
          started: float | None = None) -> dict:
    """Train, validate each epoch, keep best.pt (by validation log loss) and last.pt; returns a summary."""
    started = time.monotonic() if started is None else started
    if cfg.pooling != TRAIN_POOLING and cfg.model != "frame":
        raise DfdcError(f"--pooling {cfg.pooling} is for the frame model, not {cfg.model!r}")
    cache, out = Path(cache), Path(out)
    rank, world = _distributed()
    device = _device(cfg.device, rank)
    lead = rank == 0
    out.mkdir(parents=True, exist_ok=True)
    settings = json.loads((cache / "settings.json").read_text()) if (cache / "settings.json").is_file() else {}
    margin = float(settings.get("margin", CROP_MARGIN))

    # a frame model's contrast pooling finds the face box in its last map by the crops' margin
    shape = {"pooling": cfg.pooling, "margin": margin} if cfg.model == "frame" else {}
    torch.manual_seed(cfg.seed)
    model = fast_layout(create_model(cfg.model, backbone=cfg.backbone, pretrained=cfg.pretrained or False,
                                     **shape).to(device), device)
    # predict samples as many frames as the cache holds per video and, for a sequence model, cuts the
    # same clips of T consecutive samples (models/clips.py): it sees what validation saw
    cached_frames = int(settings.get("frames", CACHE_FRAMES))
    clip_length = {"clip_length": cfg.frames} if model.kind == "sequence" else {}
    base_config = CheckpointConfig.for_model(model, input_size=cfg.size, margin=margin, aggregation=cfg.aggregation,
                                             frames=cached_frames, **clip_length)
    get_aggregation(cfg.aggregation)  # a wrong name fails before any work
    train_data, val_data = _datasets(cache, cfg, model.kind, base_config.mean, base_config.std, margin, cached_frames)
    sampler = BalancedSampler(train_data.labels, cfg.seed)
    if lead:
        n_fake = int(train_data.labels.sum())
        log.info("train: %d training items (%d FAKE, %d of them self-blended from REAL ones; %d REAL) -> %d per "
                 "epoch, REAL:FAKE 1:1; %d validation videos; folds grouped by %s", len(train_data), n_fake,
                 int(train_data.blended.sum()), len(train_data) - n_fake, len(sampler), len(val_data.index),
                 cfg.fold_by)
    batches = ShardSampler(sampler, rank, world) if world > 1 else sampler
    steps_per_epoch = max(1, math.ceil(len(batches) / cfg.batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.epochs * steps_per_epoch))
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    history: list[dict] = []
    first_epoch, best = 0, float("inf")
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume:
        if not last_path.is_file():
            raise DfdcError("--resume: no last.pt to continue from", out)
        state = load_file(last_path)  # a damaged file is a one-line error, not a traceback
        if not isinstance(state, dict) or not STATE_KEYS <= state.keys():
            raise DfdcError("not a dfdc training state (another program's or version's file)", last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        first_epoch, history, best = state["epoch"] + 1, state["history"], state["best"]
    loss_fn = nn.BCEWithLogitsLoss()
    stopped = None
    epoch_seconds = None

    for epoch in range(first_epoch, cfg.epochs):
        if epoch_seconds is not None and _past(cfg.time_limit, started, epoch_seconds, world, device):
            stopped = f"time limit: epoch {epoch} would end past {cfg.time_limit:.0f} s"
            break
        tick = time.monotonic()
        torch.manual_seed(cfg.seed * 1000 + epoch)  # the epoch's randomness follows from (seed, epoch)
        train_data._rng = None
        batches.set_epoch(epoch)
        loader = DataLoader(train_data, batch_size=cfg.batch_size, sampler=batches, num_workers=cfg.workers,
                            drop_last=False, persistent_workers=False)
        net.train()
        losses = []
        bar = tqdm(loader, desc=f"epoch {epoch}", unit="step", leave=False, disable=None if lead else True)
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=amp):
                loss = loss_fn(net(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", refresh=False)
            if _past(cfg.time_limit, started, 0.0, world, device):
                stopped = f"time limit: stopped inside epoch {epoch}"
                break
        if stopped:
            break
        digests = [None] * world
        if world > 1:
            dist.all_gather_object(digests, _weights_digest(model))
        if lead:
            preds = validate(model, val_data, cfg, device)
            row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **_scores(preds),
                   "lr": scheduler.get_last_lr()[0], "seconds": round(time.monotonic() - tick, 1)}
            if world > 1:
                row["ranks_agree"] = len(set(digests)) == 1
            history.append(row)
            log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                       if isinstance(v, float)))
            if row["val_balanced_log_loss"] is not None and row["val_balanced_log_loss"] < best:
                best = row["val_balanced_log_loss"]
                preds.to_csv(out / "val_predictions.csv", index=False)
                _save_inference(best_path, model, base_config, cfg, history, cache)
            pd.DataFrame(history).to_csv(out / "metrics.csv", index=False)
            training_curves(pd.DataFrame(history), out / "curves.png")
            _save_state(last_path, _state(model, optimizer, scheduler, scaler, epoch, history, cfg, best))
        if world > 1:
            dist.barrier()
        epoch_seconds = time.monotonic() - tick

    if lead and not best_path.is_file():  # stopped before the first validation: still a usable file
        _save_inference(best_path, model, base_config, cfg, history, cache, note=stopped)
    if stopped and lead:
        log.warning("%s; best.pt and last.pt are saved, `--resume` continues", stopped)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return {"epochs_done": len(history), "best_val_log_loss": None if best == float("inf") else best,
            "best_metric": "validation log loss, REAL and FAKE averaged (as on a 50/50 test set)",
            "best_val_plain_log_loss": next((r["val_log_loss"] for r in history if r["val_balanced_log_loss"] == best),
                                            None),
            "stopped": stopped, "best": str(best_path), "history": history}


def _save_inference(path: Path, model: nn.Module, base: CheckpointConfig, cfg: TrainConfig, history: list,
                    cache: Path, note: str | None = None) -> None:
    facts = {"data": str(cache), "epochs": len(history), "config": asdict(cfg), "validation": history[-1:] or None}
    if note:
        facts["note"] = note
    save_checkpoint(path, model, CheckpointConfig(**{**asdict(base), "training": json.loads(json.dumps(facts))}))
