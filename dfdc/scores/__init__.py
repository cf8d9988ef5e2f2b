"""Stage 4, model outputs -> video score -> calibrated P(FAKE): aggregation of frame scores by name
(aggregation), calibration maps and the prior shift (calibration), a test set shifted to its known
balance (matching), and the metrics (metrics).

Shared by training (validation), inference (predict, evaluate) and calibration alike, so a video
is scored the same way wherever it is scored.
"""
