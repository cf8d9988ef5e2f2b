"""`dfdc evaluate`: scoring checkpoints on labelled videos, through `dfdc predict` as a user would run it.

The competition no longer scores submissions, so evaluating on labelled videos is how a user
scores a model: log loss (plain and class-balanced, as on the 50/50 test set), AUC, accuracy,
a per-video table and a reliability diagram.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from ..errors import DfdcError
from ..metadata import read_labels
from ..scores.calibration import reliability_diagram
from ..scores.metrics import score_table
from .predict import run_predict


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
