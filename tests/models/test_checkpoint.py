"""Checkpoints: one file that rebuilds the model bit-exactly, refuses edited and foreign files in one line."""

from __future__ import annotations

import pickle
import struct
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from dfdc.errors import DfdcError
from dfdc.models import create_model
from dfdc.models.checkpoint import (
    FORMAT,
    CheckpointConfig,
    init_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

TINY = "mobilenetv3_small_050"
CALIBRATOR = {"method": "platt", "a": -1.25, "b": 0.125, "bins": [0.0, 0.5, 1.0], "extra": {"n": 3}}
TRAINING = {"data": "dfdc_train_part_0..49", "epochs": 7, "validation": {"log_loss": 0.312, "auc": 0.91}}


def refused(path: Path, says: str) -> DfdcError:
    """load_checkpoint must refuse `path` with one line naming it."""
    with pytest.raises(DfdcError, match=says) as e:
        load_checkpoint(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return e.value


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, CheckpointConfig]:
    torch.manual_seed(0)
    model = create_model("sequence_spatial", backbone=TINY, hidden=16, dropout=0.0)
    config = CheckpointConfig.for_model(model, input_size=96, margin=0.3, calibrator=CALIBRATOR, training=TRAINING)
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "model.pt", model, config)
    return path, model, config


def test_round_trip_is_bit_exact(saved: tuple) -> None:
    path, model, config = saved
    loaded, loaded_config = load_checkpoint(path)
    assert loaded_config == config and asdict(loaded_config)["calibrator"] == CALIBRATOR
    assert loaded.model_name == "sequence_spatial" and not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name, tensor in original.items():
        assert tensor.dtype == restored[name].dtype and torch.equal(tensor, restored[name]), name
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.inference_mode():  # train mode, without dropout: random-init BN statistics hide the weights
        assert torch.equal(model.train()(clip), loaded.train()(clip))


def test_config_as_dict_and_plain_values(tmp_path: Path) -> None:
    model = create_model("frame", backbone=TINY)
    fields = asdict(CheckpointConfig.for_model(model))
    fields["mean"] = tuple(fields["mean"])  # read back as JSON values: lists
    _, config = load_checkpoint(save_checkpoint(tmp_path / "f.pt", model, fields))
    assert config.mean == list(fields["mean"]) and config.frames == 32 and config.calibrator is None
    with pytest.raises(ValueError, match="config describes sequence"):
        save_checkpoint(tmp_path / "g.pt", model, {**fields, "model": "sequence"})


def test_save_is_atomic(saved: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, model, config = saved
    target = tmp_path / "model.pt"
    target.write_bytes(path.read_bytes())

    def crash(obj: object, f: object) -> None:
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, model, config)
    assert target.read_bytes() == path.read_bytes()  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left


def test_changed_weight_byte_is_refused(saved: tuple, tmp_path: Path) -> None:
    path = saved[0]
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:  # torch stores tensors uncompressed and never checks the zip CRC
        entry = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", raw[entry.header_offset + 26 : entry.header_offset + 30])
    raw[entry.header_offset + 30 + name_len + extra_len + entry.file_size // 2] ^= 0x01
    (tmp_path / "flipped.pt").write_bytes(raw)
    refused(tmp_path / "flipped.pt", "checksum mismatch")


@pytest.mark.parametrize("edit", ["weight", "calibrator", "model_kwargs"])
def test_edited_checkpoint_is_refused(saved: tuple, tmp_path: Path, edit: str) -> None:
    payload = torch.load(saved[0], weights_only=True)
    if edit == "weight":
        payload["state_dict"]["head.5.bias"] += 1
    elif edit == "calibrator":
        payload["config"]["calibrator"]["a"] = 0.0
    else:
        payload["config"]["model_kwargs"]["hidden"] = 32
    torch.save(payload, tmp_path / "edited.pt")
    refused(tmp_path / "edited.pt", "checksum mismatch: the file changed after it was saved")


class Marker:
    """Unpickling this would create a file: proof that pickled code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    payload = {"format": FORMAT, "config": {}, "state_dict": {}, "sha256": "", "x": Marker(marker)}
    torch.save(payload, tmp_path / "evil.pt")
    refused(tmp_path / "evil.pt", "refused: holds pickled Python objects")
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(Marker(marker), f, protocol=2)  # as torch.load reads a legacy (non-zip) file
    refused(tmp_path / "evil.pkl", "refused: holds pickled Python objects")
    assert not marker.exists()


def test_foreign_files_are_refused(saved: tuple, tmp_path: Path) -> None:
    path, model, config = saved
    torch.save(model.state_dict(), tmp_path / "state_dict.pth")
    refused(tmp_path / "state_dict.pth", "a plain state dict, not a dfdc checkpoint")
    torch.save({"epoch": 3, "weights": [1.0, 2.0]}, tmp_path / "other.pth")
    refused(tmp_path / "other.pth", "not a dfdc checkpoint")
    torch.save({"format": FORMAT, "config": {}}, tmp_path / "partial.pt")
    refused(tmp_path / "partial.pt", "damaged dfdc checkpoint")
    (tmp_path / "notes.txt").write_text("model: frame\n")
    refused(tmp_path / "notes.txt", "not a torch file")
    (tmp_path / "empty.pt").touch()
    refused(tmp_path / "empty.pt", "empty file")
    refused(tmp_path / "missing.pt", "no such file")


def test_unknown_model_name_is_refused(tmp_path: Path) -> None:
    model = create_model("frame", backbone=TINY)
    model.model_name = "frame_v9"  # a checkpoint of a model this version does not know
    path = save_checkpoint(tmp_path / "v9.pt", model, CheckpointConfig.for_model(model))
    refused(path, "unknown model 'frame_v9'")


def test_init_checkpoint_with_lite0_backbone(tmp_path: Path) -> None:
    path = init_checkpoint(tmp_path / "dry.pt", backbone="tf_efficientnet_lite0", pretrained="lite0")
    model, config = load_checkpoint(path)
    assert (config.mean, config.std, config.input_size) == ([0.5] * 3, [0.5] * 3, 224)
    assert config.training == {"epochs": 0, "backbone_weights": "lite0"}
    fresh = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0")
    for name, tensor in fresh.encoder.state_dict().items():
        assert torch.equal(tensor, model.encoder.state_dict()[name]), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_onto_cuda(saved: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved[0]
    loaded, _ = load_checkpoint(path, device="cuda")
    on_cpu, _ = load_checkpoint(path)  # not the fixture's model: a train-mode forward moved its BatchNorm statistics
    clip = torch.randn(1, 3, 3, 64, 64)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 arithmetic on both sides
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(clip.cuda()).cpu(), on_cpu(clip), atol=1e-4, rtol=1e-4)
