"""`dfdc calibrate`: fit a training run's calibrator on its validation predictions, store it in the checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..defaults import CLIP, PRIOR
from ..errors import DfdcError
from ..models.checkpoint import load_checkpoint, save_checkpoint
from ..scores.calibration import fit_calibrator, reliability_diagram
from ..scores.metrics import score_table


def calibrate_run(run: Path, prior: float = PRIOR, clip: tuple[float, float] = CLIP,
                  checkpoint: str = "best.pt") -> dict:
    """Fit the calibrator on the run's validation predictions and store it in its checkpoint."""
    preds_path, ckpt = run / "val_predictions.csv", run / checkpoint
    if not preds_path.is_file() or not ckpt.is_file():
        raise DfdcError(f"needs val_predictions.csv and {checkpoint} from `dfdc train`", run)
    preds = pd.read_csv(preds_path)
    # dfdc train draws REAL:FAKE 1:1 (BalancedSampler): its raw scores assume a 50/50 set
    calibrator = fit_calibrator(preds["p"], preds["label"], prior=prior, clip=clip, raw_prior=0.5)
    calibrated = calibrator(preds["p"].to_numpy())
    reliability_diagram(preds["p"], preds["label"], run / "reliability.png", calibrated=calibrated, prior=prior)
    model, config = load_checkpoint(ckpt)
    save_checkpoint(ckpt, model, replace(config, calibrator=calibrator.to_dict()))
    before = score_table(preds)
    after = score_table(preds.assign(p=calibrated))
    summary = {"method": calibrator.method, "cv_log_loss": calibrator.cv_log_loss,
               "raw": before, "calibrated": after, "checkpoint": str(ckpt)}
    (run / "calibration.json").write_text(json.dumps(summary, indent=1))
    return summary
