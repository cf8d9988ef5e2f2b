"""`dfdc calibrate` and `dfdc evaluate`: fitting the calibrator of a run, and scoring a model.

The competition no longer scores submissions, so evaluating on labelled videos is how a user
scores a model: log loss (plain and class-balanced, as on the 50/50 test set), AUC, accuracy,
a per-video table and a reliability diagram.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from .calibration import fit_calibrator, reliability_diagram
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import DfdcError
from .metrics import score_table
from .predict import run_predict


def calibrate_run(run: Path, prior: float = 0.5, clip: tuple[float, float] = (0.01, 0.99),
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


def read_labels(path: Path) -> pd.Series:
    """video name -> 1 (FAKE) / 0 (REAL) from a DFDC metadata.json."""
    try:
        meta = json.loads(path.read_text())
        return pd.Series({name: int(entry["label"] == "FAKE") for name, entry in meta.items()}, name="label")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise DfdcError(f"not a DFDC metadata.json ({type(e).__name__}: {e})", path) from None


def evaluate(videos: Path, labels: Path, checkpoints: list[Path], out: Path, **predict_options) -> dict:
    """Predict the labelled videos and score the predictions, calibrated and raw; writes
    out/submission.csv, out/reports/, out/predictions.csv, out/scores.json, out/reliability.png."""
    truth = read_labels(labels)
    out.mkdir(parents=True, exist_ok=True)
    reports = out / "reports"
    shutil.rmtree(reports, ignore_errors=True)  # a report left by an earlier run must not be read as this one's
    scores = run_predict(videos, checkpoints, out / "submission.csv", report_dir=reports, **predict_options)
    table = pd.DataFrame({"video": list(scores), "p": list(scores.values())})
    table = table[table["video"].isin(truth.index)]
    if table.empty:
        raise DfdcError("none of the videos has a label in this metadata.json", labels)
    table["label"] = truth.loc[table["video"]].to_numpy()
    table["p_raw"] = [_raw(reports / f"{Path(v).stem}.json", p) for v, p in zip(table["video"], table["p"])]
    table.to_csv(out / "predictions.csv", index=False)
    result = {"calibrated": score_table(table), "raw": score_table(table.assign(p=table["p_raw"]))}
    reliability_diagram(table["p_raw"], table["label"], out / "reliability.png", calibrated=table["p"], prior=0.5)
    (out / "scores.json").write_text(json.dumps(result, indent=1))
    return result


def _raw(report: Path, final: float) -> float:
    """The video's score without calibration, as predict reported it (the prior where none)."""
    try:
        return float(json.loads(report.read_text())["raw_label"])
    except (OSError, ValueError, KeyError, TypeError):
        return final
