"""Synthetic DFDC-shaped data (synth): real faces with synthetic manipulations, for dry runs and tests.

It proves the plumbing, not the detector: quality is judged on real manipulations only.
"""
