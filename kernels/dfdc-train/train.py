"""DFDC training kernel: install dfdc from the utility dataset, cut the faces of the training videos, train.

On Kaggle every path is under /kaggle; elsewhere DFDC_KAGGLE_ROOT names a tree laid out the same
way (`dfdc kaggle dry-run` makes one). DFDC_KERNEL_LIMIT is the kernel's time limit in seconds
(a Kaggle session ends after 12 hours). DFDC_TRAIN_DATA names the training videos as
<input>/<folder> (the competition's train_sample_videos by default; an attached dataset of
dfdc_train_part_N folders also works); DFDC_EXTRACT_ARGS and DFDC_TRAIN_ARGS add options.
The checkpoints (best.pt, last.pt) land in /kaggle/working/model, the kernel's output.
"""

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

STARTED = time.monotonic()
ROOT = Path(os.environ.get("DFDC_KAGGLE_ROOT", "/kaggle"))
LIMIT = float(os.environ.get("DFDC_KERNEL_LIMIT", 12 * 3600))
SPARE = 0.05  # of the limit, left for saving and shutting down
TRAIN_DATA = os.environ.get("DFDC_TRAIN_DATA", "deepfake-detection-challenge/train_sample_videos")


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
source, _, folder = TRAIN_DATA.partition("/")
data = find_input(source) / folder
weights = utility if (utility / "blazeface.pth").is_file() else find_input("blazeface-pytorch")
cache = ROOT / "temp" / "faces"  # scratch: not part of the kernel's output
run(sys.executable, "-m", "dfdc.cli", "extract", data, "--out", cache, "--weights", weights,
    *shlex.split(os.environ.get("DFDC_EXTRACT_ARGS", "")))
left = LIMIT * (1 - SPARE) - (time.monotonic() - STARTED)
run(sys.executable, "-m", "dfdc.cli", "train", cache, "--out", ROOT / "working" / "model",
    "--time-limit", int(max(left, 60)), *shlex.split(os.environ.get("DFDC_TRAIN_ARGS", "")))
