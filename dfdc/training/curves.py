"""Training curves as a PNG: what a person looks at to see whether a run learns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure


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
