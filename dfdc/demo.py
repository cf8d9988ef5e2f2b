"""`dfdc demo`: the whole product, end to end, on a fresh machine: a local dry run that ends in a submission.

With real labelled videos (default shared/data/real: one folder per identity group, each with a
DFDC metadata.json): faces -> cross-validation in folds of whole folders (DEMO_FOLDS) of the frame
model with its last backbone blocks fine-tuned per fold (out-of-fold scores, aggregation and
calibration chosen on them) ->
demo/model.pt -> `dfdc predict` on a test folder (default shared/data/dfdc_sample) ->
submission/submission.csv. Quality is judged on real manipulations only, out of fold.

Without them, a DFDC-shaped synthetic sample (real faces, synthetic manipulations) goes through
extract -> train -> calibrate -> evaluate -> predict instead: it proves the plumbing, not the
detector. Either way the work is fixed by counts (videos, epochs, folds), never by the clock.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .defaults import default_shared
from .inference.evaluate import evaluate
from .inference.predict import run_predict
from .inference.submission import check_submission
from .sample.synth import make_sample
from .scores.metrics import figure
from .training.calibrate import calibrate_run
from .training.cv import CVConfig, run_cv, summary_lines
from .training.dataset import read_index
from .training.extract import run_extract
from .training.train import TrainConfig, train

# Folds of the real dry run, each holding whole folders (one per folder where there are no more). The
# final model is trained on every video either way (seed 0: the same weights, tensor for tensor), so the
# folds only shape the out-of-fold figures and the calibrator fitted on them. On ../shared/data/real's
# 8 folders, 4 folds took 7-8 min of cross-validation against 15-16 for one per folder (the AMD EPYC,
# 2 cores), which keeps the demo inside its 20 minutes on a slow hour; seeds 0 and 1, pooled
# calibrated 0.702 / 0.670 against 0.648 / 0.752, AUC 0.685 / 0.734 against 0.757 / 0.683 (README).
DEMO_FOLDS = 4


class _Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[demo {time.monotonic() - self.start:6.0f} s] {text}", flush=True)


def run_demo(out: Path, submission: Path, *, data: Path | None = None, test: Path | None = None,
             videos: int = 96, epochs: int = 8, seed: int = 0, weights: Path | None = None,
             device: str = "auto", time_limit: float | None = None) -> dict:
    """The real dry run when `data` (default shared/data/real) holds labelled videos, else the synthetic one."""
    shared = default_shared()
    data = data if data is not None else shared / "data" / "real"
    test = test if test is not None else shared / "data" / "dfdc_sample"
    clock = _Clock()
    if data.is_dir():
        summary = _real(data, test, out, submission, seed, weights, device, clock)
    else:
        clock.say(f"no labelled real videos at {data}: the synthetic sample instead (plumbing, not quality)")
        summary = _synthetic(out, submission, videos, epochs, seed, weights, device, time_limit, clock)
    summary["seconds"] = round(time.monotonic() - clock.start)
    (out / "demo.json").write_text(json.dumps(summary, indent=1))
    return summary


def _real(data: Path, test: Path, out: Path, submission: Path, seed: int, weights: Path | None,
          device: str, clock: _Clock) -> dict:
    cache = out / "cache"
    run_extract(data, cache, frames=32, size=224, min_faces=8, workers=2, weights=weights, seed=seed)
    clock.say(f"faces of {data} extracted to {cache} (crops, faces.json and a contact sheet per video)")

    folds = min(DEMO_FOLDS, read_index(cache)["part"].nunique())
    cv = run_cv(cache, out / "cv", CVConfig(folds=folds, seed=seed, device=device))
    model = out / "model.pt"
    shutil.copyfile(cv["model"], model)
    for line in summary_lines(cv):
        clock.say(f"cross-validation: {line}")
    clock.say(f"pictures: {out / 'cv' / 'curves.png'}, {out / 'cv' / 'reliability.png'}, {out / 'cv' / 'roc.png'}; "
              f"per fold and per folder: {out / 'cv' / 'cv.json'}; final model {model}")

    sample = test / "sample_submission.csv"
    run_predict(test, [model], submission, sample_submission=sample if sample.is_file() else None,
                device=device, weights=weights, report_dir=out / "test_reports")
    problems = check_submission(submission, test)
    clock.say(f"submission for {test}: {submission} ({'valid' if not problems else '; '.join(problems)})")
    kept = ("folds_k", "grouped_by", "aggregation", "pooled", "folds", "matched")
    return {"data": str(data), "cv": {k: cv[k] for k in kept},
            "calibration": cv["calibration"]["method"], "model": str(model), "submission": str(submission),
            "valid": not problems}


def _synthetic(out: Path, submission: Path, videos: int, epochs: int, seed: int, weights: Path | None,
               device: str, time_limit: float | None, clock: _Clock) -> dict:
    data = out / "data"
    sample = dict(size=(480, 270), seconds=2.0, fps=15.0, weights=weights)
    for name, n, s in (("train", videos, seed), ("heldout", max(8, videos // 3), seed + 1),
                       ("test", max(8, videos // 8), seed + 2)):
        if not (data / name / "metadata.json").is_file():
            make_sample(data / name, videos=n, seed=s, **sample)
    clock.say(f"DFDC-shaped sample made from real faces: {data}/{{train,heldout,test}} (mp4 + metadata.json)")

    cache = out / "cache"
    run_extract(data / "train", cache, frames=12, size=128, min_faces=4, weights=weights, seed=seed)
    clock.say(f"faces extracted to {cache} (crops, faces.json per video, index.csv)")

    run = out / "run"
    cfg = TrainConfig(model="frame", backbone="tf_efficientnet_lite0", pretrained="lite0", size=128, epochs=epochs,
                      batch_size=32, lr=3e-4, time_limit=time_limit, device=device, seed=seed)
    result = train(cache, run, cfg)
    clock.say(f"trained {result['epochs_done']} epochs ({result['stopped'] or 'all epochs'}); "
              f"curves: {run / 'curves.png'}, best checkpoint: {run / 'best.pt'}")
    cal = calibrate_run(run)
    clock.say(f"calibrated with {cal['method']}; reliability diagram: {run / 'reliability.png'}")

    scores = evaluate(data / "heldout", data / "heldout" / "metadata.json", [run / "best.pt"], out / "heldout",
                      device=device, weights=weights)
    clock.say(f"held-out synthetic videos: balanced log loss raw {figure(scores['raw']['balanced_log_loss'])}, "
              f"calibrated {figure(scores['calibrated']['balanced_log_loss'])} (chance 0.6931), "
              f"AUC {figure(scores['calibrated']['auc'], 3)}; table: {out / 'heldout' / 'predictions.csv'}")
    shutil.copyfile(run / "best.pt", out / "model.pt")
    run_predict(data / "test", [out / "model.pt"], submission, sample_submission=data / "test" / "sample_submission.csv",
                device=device, weights=weights, report_dir=out / "test_reports")
    problems = check_submission(submission, data / "test")
    clock.say(f"submission: {submission} ({'valid' if not problems else '; '.join(problems)})")
    return {"heldout": scores, "calibration": cal["method"], "submission": str(submission), "valid": not problems}
