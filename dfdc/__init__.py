"""dfdc: deepfake detection for face videos, built for the DFDC Kaggle kernels.

Data flow: video -> frames -> faces -> crops -> model -> video score -> calibration -> submission.
"""

__version__ = "0.1.0"
