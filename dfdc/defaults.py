"""The settings several stages must agree on, each written once; a flag or a checkpoint overrides them.

A checkpoint records the values it was trained with (crop size, margin, frames, clip length,
aggregation), and `dfdc predict` takes them from there: these are only the starting points.
"""

import os
from pathlib import Path

CROP_MARGIN = 0.3  # fraction of the face box's side added on each side of a square crop
CROP_SIZE = 224  # side of a square face crop, pixels (EfficientNet-B0's input)
VIDEO_FRAMES = 32  # frames sampled per video by `dfdc faces` and frame models at inference (1st place)
CACHE_FRAMES = 15  # frames per video `dfdc extract` caches for training
CLIP_FRAMES = 10  # clip length T of the sequence models (the original design)
SAMPLING = "even"  # which frames of a video are read (video/sampling.py)
AGGREGATION = "confident"  # how per-frame P(FAKE) becomes a track score (scores/aggregation.py)
PRIOR = 0.5  # P(FAKE) of a video without a score: the DFDC test sets were 50/50
CLIP = (0.01, 0.99)  # submitted probabilities are clipped to this: one wrong answer costs at most -log(0.01)
MATCH_MIN = 10  # predict --match-prior: videos scored by the models before the set is matched to its prior
DETECTOR = "blazeface"  # the face detector (faces/detector.py)
# `dfdc predict`, `evaluate` and `faces` detect whole frames on every k-th sampled frame and follow each
# face between (faces/find.py): on ../shared/data/real and the DFDC sample videos (132), 3.3 instead of
# 6.9 detector windows per frame, the same main person in every video (benchmarks/detect_every.py).
# `dfdc extract` detects every frame whole: training has no time limit, and its boxes place the fakes' crops.
DETECT_EVERY = 4
TUNE_BLOCKS = 2  # `dfdc cv`: last backbone blocks of the frame model fine-tuned per fold (0: frozen, logistic head)
TUNE_VIEWS = 3  # `dfdc cv` fine-tuning: cached views per crop (as predict sees it, then augmented draws)
# `dfdc cv --align`: the fine-tuned frame model standardises each track's maps before its tuned blocks by the track's
# own statistics (models/align.py). Off: on ../shared/data/real, seeds 0-2, it bettered the 50/50 matched log loss on
# one seed and lowered the pooled AUC on two (README, "What has been measured").
ALIGN = False
# `dfdc cv`'s fine-tuned frame model pools its last map as the face box's mean less the ring around it (models/frame.py),
# not the plain average: on ../shared/data/real, seeds 0-3, pooled AUC 0.730 against 0.701 and raw log loss better on all
# four, mean fold AUC 0.799 against 0.777, calibrated 0.651 against 0.671 (README, "What has been measured").
POOLING = "contrast"
POOLINGS = ("last", "contrast", "multiscale")  # what a frame model's head can see (models/frame.py)
# `dfdc train`'s frame model keeps the plain average: contrast pooling with every layer trained is not measured
TRAIN_POOLING = "last"
SELF_BLENDS = 2  # self-blended fakes made from each REAL crop (training/blend.py): cached by cv, per epoch in train


def default_shared() -> Path:
    """Where the project's data lives: $DFDC_SHARED, else ../shared beside the repository."""
    env = os.environ.get("DFDC_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"
