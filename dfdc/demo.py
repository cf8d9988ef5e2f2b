"""`dfdc demo`: the whole product on a fresh machine with no data of its own.

A DFDC-shaped sample (real faces, synthetic manipulations) -> face cache -> a frame model trained
for a few minutes from the offline ImageNet Lite0 backbone -> calibration -> evaluation on
held-out videos -> `dfdc predict` on a test folder -> submission/submission.csv.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .inference.evaluate import evaluate
from .inference.predict import run_predict
from .inference.submission import check_submission
from .sample.synth import make_sample
from .training.calibrate import calibrate_run
from .training.extract import run_extract
from .training.train import TrainConfig, train


def run_demo(out: Path, submission: Path, minutes: float = 4.0, videos: int = 96, epochs: int = 12,
             seed: int = 0, weights: Path | None = None, device: str = "auto") -> dict:
    """Run every stage, printing what it did and where the pictures are; returns the scores."""
    start = time.monotonic()

    def say(text: str) -> None:
        print(f"[demo {time.monotonic() - start:6.0f} s] {text}", flush=True)

    data = out / "data"
    sample = dict(size=(480, 270), seconds=2.0, fps=15.0, weights=weights)
    for name, n, s in (("train", videos, seed), ("heldout", max(8, videos // 3), seed + 1),
                       ("test", max(8, videos // 8), seed + 2)):
        if not (data / name / "metadata.json").is_file():
            make_sample(data / name, videos=n, seed=s, **sample)
    say(f"DFDC-shaped sample made from real faces: {data}/{{train,heldout,test}} (mp4 + metadata.json)")

    cache = out / "cache"
    run_extract(data / "train", cache, frames=12, size=128, min_faces=4, weights=weights, seed=seed)
    say(f"faces extracted to {cache} (crops, faces.json per video, index.csv)")

    run = out / "run"
    cfg = TrainConfig(model="frame", backbone="tf_efficientnet_lite0", pretrained="lite0", size=128, epochs=epochs,
                      batch_size=32, lr=3e-4, time_limit=minutes * 60, device=device, seed=seed)
    result = train(cache, run, cfg)
    say(f"trained {result['epochs_done']} epochs ({result['stopped'] or 'all epochs'}); "
        f"curves: {run / 'curves.png'}, best checkpoint: {run / 'best.pt'}")

    cal = calibrate_run(run)
    say(f"calibrated with {cal['method']}; reliability diagram: {run / 'reliability.png'}")

    scores = evaluate(data / "heldout", data / "heldout" / "metadata.json", [run / "best.pt"], out / "heldout",
                      frames=12, device=device, weights=weights)
    raw, calibrated = scores["raw"]["balanced_log_loss"], scores["calibrated"]["balanced_log_loss"]
    say(f"held-out videos: balanced log loss raw {raw:.4f}, calibrated {calibrated:.4f} (chance 0.6931), "
        f"AUC {scores['calibrated']['auc']:.3f}; table: {out / 'heldout' / 'predictions.csv'}")

    run_predict(data / "test", [run / "best.pt"], submission, sample_submission=data / "test" / "sample_submission.csv",
                frames=12, device=device, weights=weights, report_dir=out / "test_reports")
    problems = check_submission(submission, data / "test")
    say(f"submission: {submission} ({'valid' if not problems else '; '.join(problems)})")
    summary = {"heldout": scores, "calibration": cal["method"], "submission": str(submission),
               "valid": not problems, "seconds": round(time.monotonic() - start)}
    (out / "demo.json").write_text(json.dumps(summary, indent=1))
    return summary
