"""Stage 6, labelled videos -> a checkpoint: the face cache (extract), clip and frame datasets with
the balanced sampler (dataset), augmentations (augment), the training loop (train), its curves
(curves) and fitting the calibrator of a run (calibrate).

Takes DFDC-format data roots (metadata.json per folder); gives checkpoints `predict` takes as they are.
"""
