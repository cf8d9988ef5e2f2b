"""Training curves and ROC curves as PNGs: what a person looks at to see whether a run learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve


def training_curves(history: pd.DataFrame, path: Path) -> Path:
    """Loss (training, validation log loss per video) and validation AUC/accuracy per epoch."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(history["epoch"], history["train_loss"], "o-", label="training loss")
    left.plot(history["epoch"], history["val_balanced_log_loss"], "o-", label="validation log loss (REAL/FAKE balanced)")
    left.axhline(0.6931, color="k", ls=":", label="chance (0.693)")
    left.set(xlabel="epoch", ylabel="log loss")
    left.legend()
    for column in ("val_auc", "val_accuracy"):
        right.plot(history["epoch"], history[column], "o-", label=column.replace("_", " "))
    right.set(xlabel="epoch", ylim=(0, 1))
    right.legend()
    fig.savefig(path, dpi=90)
    return path


def cv_curves(folds: pd.DataFrame, path: Path) -> Path:
    """Per fold of `dfdc cv`: training and held-out balanced log loss of the head, and held-out AUC."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = np.arange(len(folds))
    left.bar(x - 0.2, folds["train_log_loss"].astype(float), 0.4, label="training folds")
    left.bar(x + 0.2, folds["val_log_loss"].astype(float), 0.4, label="held-out fold")
    left.axhline(0.6931, color="k", ls=":", label="chance (0.693)")
    left.set(xlabel="fold", ylabel="balanced log loss (video mean of frames)", xticks=x)
    left.legend()
    auc = [r["auc"] if r["auc"] is not None else np.nan for r in folds["calibrated"]]
    right.bar(x, auc, 0.5)
    right.axhline(0.5, color="k", ls=":")
    right.set(xlabel="fold", ylabel="held-out AUC", ylim=(0, 1), xticks=x)
    fig.savefig(path, dpi=90)
    return path


def roc_curves(oof: pd.DataFrame, path: Path) -> Path:
    """ROC of the out-of-fold scores (columns label, p), pooled and per folder with both classes."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "k:", label="chance")
    groups = [("pooled", oof)] + [(str(n), g) for n, g in oof.groupby("folder") if g["label"].nunique() == 2]
    for name, g in groups:
        fpr, tpr, _ = roc_curve(g["label"], g["p"])
        ax.plot(fpr, tpr, lw=2.5 if name == "pooled" else 1, label=name)
    ax.set(xlabel="false positive rate (REAL called FAKE)", ylabel="true positive rate", title="Out-of-fold ROC")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    return path
