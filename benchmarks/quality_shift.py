"""Does a cross-validated model read picture quality as a sign of FAKE? Measured on held-out REAL videos.

    python benchmarks/quality_shift.py demo/cache demo/cv [other cv run folders...]

The DFDC hidden test set had lower resolution and quality than the training data, and on the
real set here FaceForensics++ and DFDC fakes have softer faces than their originals (Celeb-DF's
the other way round). A model that learnt "soft face = FAKE" calls low-quality real footage fake.
It first prints the face sharpness (log variance of the Laplacian over the crop's centre) per folder
and label. Then for each run: every REAL video is scored by the fold model that never saw it, on 16
of its cached crops as they are and blurred (Gaussian, sigma 1), halved (downscaled 2x and back) and
JPEG'd (quality 30); it prints the mean change of the logit (> 0: towards FAKE), the share of videos
moved towards FAKE, and the correlation, within each folder and label, of the out-of-fold logit with
the face's sharpness: near 0 when sharpness does not drive the scores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from dfdc.models.checkpoint import load_checkpoint
from dfdc.scores.calibration import logit
from dfdc.training.augment import ClipAugment
from dfdc.training.dataset import FrameDataset, read_index

CHANGES = {
    "blur": lambda f: cv2.GaussianBlur(f, (0, 0), 1.0),
    "halved": lambda f: cv2.resize(cv2.resize(f, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
                                   (f.shape[1], f.shape[0]), interpolation=cv2.INTER_LINEAR),
    "jpeg30": lambda f: cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], cv2.IMREAD_UNCHANGED),
}


def sharpness(crops: np.ndarray) -> float:
    """Median over crops of log var(Laplacian) of the grey centre half of the crop."""
    s = crops.shape[1]
    centre = crops[:, s // 4:3 * s // 4, s // 4:3 * s // 4]
    return float(np.log(np.median([cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                                   for c in centre])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache", type=Path)
    parser.add_argument("runs", type=Path, nargs="+", help="dfdc cv run folders (oof.csv, folds/)")
    args = parser.parse_args()
    data = FrameDataset(args.cache, read_index(args.cache))
    crops = {}
    for row, video in enumerate(data.index["video"]):
        folder, frames = data.frames(row)
        crops[video] = data.load(folder, frames[::2][:16])
    sharp = pd.Series({v: sharpness(c) for v, c in crops.items()}, name="sharpness")
    by = pd.DataFrame({"folder": data.index["folder"].to_numpy(), "label": data.index["label"].to_numpy()},
                      index=data.index["video"]).join(sharp).groupby(["folder", "label"])["sharpness"].mean()
    print("face sharpness, mean per folder (FAKE / REAL): " + ", ".join(
        f"{folder} {by.get((folder, 'FAKE'), np.nan):.1f} / {by.get((folder, 'REAL'), np.nan):.1f}"
        for folder in sorted(data.index["folder"].unique())))
    for run in args.runs:
        oof = pd.read_csv(run / "oof.csv").join(sharp, on="video")
        moved = {name: [] for name in CHANGES}
        for fold, held in oof[oof["label"] == 0].groupby("fold"):
            model, config = load_checkpoint(run / "folds" / f"fold_{fold}.pt")
            prep = ClipAugment(config.input_size, tuple(config.mean), tuple(config.std), train=False)
            with torch.inference_mode():
                def score(clip: np.ndarray) -> float:
                    return float(model.eval()(prep(clip)).float().mean())

                for video in held["video"]:
                    base = score(crops[video])
                    for name, change in CHANGES.items():
                        moved[name].append(score(np.stack([change(c) for c in crops[video]])) - base)
        figures = ", ".join(f"{name} {np.mean(d):+.2f} ({np.mean(np.array(d) > 0):.0%} towards FAKE)"
                            for name, d in moved.items())
        oof["z"] = logit(oof["p_raw"].to_numpy())
        centred = oof[["z", "sharpness"]] - oof.groupby(["folder", "label"])[["z", "sharpness"]].transform("mean")
        zc, sc, real = centred["z"], centred["sharpness"], oof["label"] == 0
        r, r_real = np.corrcoef(zc, sc)[0, 1], np.corrcoef(zc[real], sc[real])[0, 1]
        print(f"{run}: REAL videos' mean logit change: {figures}; out-of-fold logit vs face sharpness, within "
              f"folder and label: r {r:+.2f} (REAL only {r_real:+.2f})")


if __name__ == "__main__":
    main()
