"""Stage 5, test videos -> submission.csv: `dfdc predict` (predict), the checkpoints of an ensemble
(ensemble), the time governor (governor), the always-valid CSV (submission), and `dfdc evaluate`
on labelled videos (evaluate).

Takes videos and checkpoints; gives a complete, valid submission at every moment, and reports.
"""
