"""Stage 1, video -> frames: which frames to read (sampling), reading them (read), writing videos
(write, for the synthetic sample) and the one rule for which files are videos (files).

Takes a video file; gives `Video`: upright RGB frames with their true frame indices.
"""
