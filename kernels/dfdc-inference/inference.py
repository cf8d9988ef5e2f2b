"""DFDC inference kernel: install dfdc from the utility dataset, score the test videos, write submission.csv.

On Kaggle every path is under /kaggle; elsewhere DFDC_KAGGLE_ROOT names a tree laid out the same
way (`dfdc kaggle dry-run` makes one). DFDC_KERNEL_LIMIT is the kernel's time limit in seconds
(DFDC gave 9 hours); DFDC_PREDICT_ARGS adds `dfdc predict` options, e.g. "--frames 16".
Every *.pt of the utility dataset is a member of the ensemble. The DFDC test sets were 50/50, so
the scores of the test set are shifted together to mean P(FAKE) 0.5 (`--match-prior`): footage
unlike the training videos moves all scores one way, and a known balance pins them back.
"""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

STARTED = time.monotonic()
ROOT = Path(os.environ.get("DFDC_KAGGLE_ROOT", "/kaggle"))
LIMIT = float(os.environ.get("DFDC_KERNEL_LIMIT", 9 * 3600))
SPARE = 0.1  # of the limit, left for writing the CSV and shutting down


def find_input(name):
    """input/<name>, or one or two levels deeper where Kaggle nests its mounts."""
    inputs = ROOT / "input"
    for folder in [inputs / name, *sorted(inputs.glob(f"*/{name}")), *sorted(inputs.glob(f"*/*/{name}"))]:
        if folder.is_dir():
            return folder
    sys.exit(f"input {name!r} not found under {inputs}: attach it to the kernel")


def run(*args):
    print("+", *args, flush=True)
    code = subprocess.run([str(a) for a in args]).returncode
    if code:
        sys.exit(f"failed with status {code}")


utility = find_input("dfdc-utility")
run(sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", utility, *sorted(utility.glob("*.whl")))
competition = find_input("deepfake-detection-challenge")
weights = utility if (utility / "blazeface.pth").is_file() else find_input("blazeface-pytorch")
checkpoints = sorted(utility.glob("*.pt"))
if not checkpoints:
    sys.exit(f"no *.pt checkpoint in {utility}: build it with `dfdc kaggle build-dataset --checkpoint`")
left = LIMIT * (1 - SPARE) - (time.monotonic() - STARTED)
run(sys.executable, "-m", "dfdc.cli", "predict", competition / "test_videos",
    *(arg for ckpt in checkpoints for arg in ("--checkpoint", ckpt)),
    "--sample-submission", competition / "sample_submission.csv", "--out", ROOT / "working" / "submission.csv",
    "--time-limit", int(max(left, 60)), "--weights", weights, "--match-prior", *shlex.split(os.environ.get("DFDC_PREDICT_ARGS", "")))
