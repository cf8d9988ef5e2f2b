"""`dfdc kaggle dry-run`: run a kernel here as Kaggle would, so its mistakes cost minutes, not a day.

The kernel gets a fresh /kaggle-like tree, ROOT/kaggle with its sources under input/ (symlinks to
local folders; the utility dataset built fresh unless given) laid out as Kaggle mounts them today
(competitions/<slug>, datasets/<owner>/<slug>) or as in 2020 (input/<slug>, --layout flat), and an
empty working/, and runs with
DFDC_KAGGLE_ROOT=ROOT/kaggle (the kernel scripts read their paths from it, /kaggle by default),
working/ as its folder, a venv holding only what the Kaggle image provides (at this machine's
versions, or the image's own with an image environment of `dfdc kaggle image-env`; the versions
that differ from the image are reported), an environment
without this machine's variables, no network (its own network namespace via `unshare`, else a
socket guard), and its time limit (DFDC_KERNEL_LIMIT tells it; past it, it is killed). A
submission.csv it writes is checked against the competition's sample submission.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DfdcError
from ..inference.submission import check_submission
from . import COMPETITION, OWNER_PLACEHOLDER, UTILITY
from .dataset import build_dataset
from .image import SESSION_LIMIT
from .imageenv import image_python, kernel_differences, make_image_env
from .metadata import input_names, input_paths, read_kernel

PASSED_ON = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
             "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES")  # machine settings, not configuration
NAMESPACES = (["unshare", "--net"], ["unshare", "--user", "--map-root-user", "--net"])
GUARD = '''"""dfdc dry run: no network namespace could be made here, so Internet sockets refuse to connect."""
import socket

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _checked(method):
    def call(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(101, "network is off in this dry run, as in a Kaggle kernel without internet")
        return method(self, address)
    return call


socket.socket.connect, socket.socket.connect_ex = _checked(_connect), _checked(_connect_ex)
'''


@dataclass
class DryRun:
    """What a dry run did: exit status (None: stopped at the time limit), time, outputs, submission problems."""

    returncode: int | None
    seconds: float
    limit: float
    network: str
    working: Path
    submission: Path | None = None
    problems: list[str] = field(default_factory=list)
    layout: str = "current"
    differences: list[str] = field(default_factory=list)  # the kernel's Python and packages vs the image's


def install_guard(python: Path) -> None:
    """The weaker guard: a sitecustomize in the venv of `python` that refuses Internet connections."""
    site = next(python.parent.parent.glob("lib/python3*/site-packages"))
    (site / "sitecustomize.py").write_text(GUARD)


def network_jail(python: Path) -> tuple[list[str], str]:
    """A command prefix that cuts the kernel off the network, and how; else the guard in its venv."""
    if shutil.which("unshare"):
        for prefix in NAMESPACES:
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix, "own network namespace"
    install_guard(python)
    return [], "socket guard (no network namespace here)"


def kernel_env(kaggle: Path, python: Path, home: Path, limit: float | None, extra: dict[str, str]) -> dict[str, str]:
    """The kernel's environment: PATH to its venv, a fresh HOME, no pip configuration of this machine."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    env.update(PATH=f"{python.parent}:/usr/local/bin:/usr/bin:/bin", HOME=str(home), PIP_CONFIG_FILE=os.devnull,
               PYTHONNOUSERSITE="1", PYTHONUNBUFFERED="1", DFDC_KAGGLE_ROOT=str(kaggle))
    if limit is not None:
        env["DFDC_KERNEL_LIMIT"] = str(int(limit))
    return {**env, **extra}


def _check_inputs(meta: dict, inputs: dict[str, Path]) -> None:
    """Each --input names a source of the kernel and an existing folder."""
    names = input_names(meta)
    for name, folder in inputs.items():
        if name not in names:
            raise DfdcError(f"--input {name}: not a source of this kernel (its sources: {', '.join(names)})")
        if not Path(folder).is_dir():
            raise DfdcError("input folder not found", folder)


def _check(working: Path, kaggle: Path, paths: dict[str, str]) -> tuple[Path | None, list[str]]:
    """working/submission.csv checked against the competition's sample submission (or test videos)."""
    sub = working / "submission.csv"
    if not sub.is_file():
        return None, []
    competition = kaggle / "input" / paths.get(COMPETITION, COMPETITION)
    sample = competition / "sample_submission.csv"
    videos = competition / "test_videos"
    if sample.is_file():
        return sub, check_submission(sub, sample_submission=sample)
    return sub, check_submission(sub, videos if videos.is_dir() else None)


def dry_run(kernel_dir: str | Path, inputs: dict[str, Path], *, time_limit: float | None = None,
            checkpoints: Sequence[Path] = (), weights: Path | None = None, wheelhouse: Path | None = None,
            env: dict[str, str] | None = None, root: Path | None = None, layout: str = "current",
            image_env: Path | None = None) -> DryRun:
    """Run the kernel of `kernel_dir` on `inputs` (source name -> local folder) as Kaggle would."""
    kernel_dir = Path(kernel_dir)
    meta = read_kernel(kernel_dir)
    if (meta.get("kernel_type", "script"), meta.get("language", "python")) != ("script", "python"):
        raise DfdcError("a dry run runs Python scripts (kernel_type script, language python)", kernel_dir)
    script = kernel_dir / meta["code_file"]
    if not script.is_file():
        raise DfdcError("code_file not found", script)
    _check_inputs(meta, inputs)
    paths = input_paths(meta, layout)
    if image_env is not None:
        image_python(image_env)  # checked before minutes go into building the dataset
    auto = root is None
    root = Path(tempfile.mkdtemp(prefix="dfdc-dryrun-")) if auto else Path(root)
    if not auto and root.exists() and any(root.iterdir()):
        raise DfdcError("exists and is not empty: a dry run starts from a fresh tree", root)
    kaggle, home = root / "kaggle", root / "home"
    try:
        if UTILITY in input_names(meta) and UTILITY not in inputs:
            build_dataset(kaggle / "input" / paths[UTILITY], OWNER_PLACEHOLDER, checkpoints, weights, wheelhouse)
        result = _run(script, {paths[name]: folder for name, folder in inputs.items()}, kaggle, home, root / "env",
                      time_limit, env or {}, image_env)
        result.layout = layout
        result.submission, result.problems = _check(kaggle / "working", kaggle, paths)
    except BaseException:
        if auto:
            shutil.rmtree(root, ignore_errors=True)
        raise
    if auto:  # keep what the kernel wrote, not the environment it ran in
        for folder in (root / "env", home, kaggle / "input"):
            shutil.rmtree(folder, ignore_errors=True)
    return result


def _run(script: Path, mounts: dict[str, Path], kaggle: Path, home: Path, env_dir: Path,
         time_limit: float | None, extra: dict[str, str], image_env: Path | None) -> DryRun:
    """Mount the inputs (path under input/ -> local folder), make the environment, run the script."""
    for folder in (kaggle / "input", kaggle / "working", kaggle / "src", home):
        folder.mkdir(parents=True, exist_ok=True)
    for path, folder in mounts.items():
        (kaggle / "input" / path).parent.mkdir(parents=True, exist_ok=True)
        (kaggle / "input" / path).symlink_to(Path(folder).resolve(), target_is_directory=True)
    python = make_image_env(env_dir, image_env)
    differences = kernel_differences(python)
    jail, network = network_jail(python)
    code = kaggle / "src" / script.name
    shutil.copyfile(script, code)
    limit = time_limit or SESSION_LIMIT
    started = time.monotonic()
    proc = subprocess.Popen([*jail, str(python), str(code)], cwd=kaggle / "working", start_new_session=True,
                            env=kernel_env(kaggle, python, home, time_limit, extra))
    returncode: int | None = None
    try:
        returncode = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pass
    finally:  # past the limit, interrupted, or done: nothing the kernel started outlives it
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    seconds = time.monotonic() - started
    return DryRun(returncode, seconds, limit, network, kaggle / "working", differences=differences)
