"""The model registry, the frame and sequence models, the ConvLSTM and backbone weights from local files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn as nn
from PIL import Image
from sklearn.datasets import load_sample_image

from dfdc.errors import DfdcError
from dfdc.models import create_model, list_models
from dfdc.models.align import track_stats
from dfdc.models.backbones import lite0_file, load_backbone
from dfdc.models.checkpoint import load_checkpoint
from dfdc.models.convlstm import ConvLSTM
from dfdc.models.selimsef import SELIMSEF_BACKBONE, import_selimsef
from dfdc.models.torchfile import read_state_dict

TINY = "mobilenetv3_small_050"  # a real timm backbone, small enough for CPU tests
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
DAISY = 985  # ImageNet class of scikit-learn's sample photo flower.jpg


def image_tensor(rgb: np.ndarray, size: int = 224) -> torch.Tensor:
    """(1, 3, size, size) in [-1, 1]: the Lite0 normalisation (mean = std = 0.5)."""
    img = Image.fromarray(rgb).convert("RGB").resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return (x - 0.5) / 0.5


def calibrate_batchnorm(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Eval mode, with BatchNorm statistics taken from `x` as training would: a randomly initialised
    net with BN's initial unit statistics gives nearly the same output for every input (~1e-6 apart),
    which would let comparisons of outputs pass whatever the weights."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batch
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


# --- registry -----------------------------------------------------------------------------------


def test_registry_names_and_recorded_arguments() -> None:
    assert {"frame", "sequence", "sequence_spatial"} <= set(list_models())
    model = create_model("frame", backbone=TINY, dropout=0.1)
    assert model.model_name == "frame" and model.kind == "frame"
    # every shaping argument with its default filled in; the weights source is not an argument of the shape
    assert model.model_kwargs == {"backbone": TINY, "dropout": 0.1, "drop_path_rate": 0.0, "pooling": "last",
                                  "align_block": None, "margin": 0.3}
    spatial = create_model("sequence_spatial", backbone=TINY)
    assert spatial.kind == "sequence"
    assert spatial.model_kwargs["spatial"] is True and spatial.model_kwargs["features"] == 32


@pytest.mark.parametrize(
    "name, kwargs, says",
    [
        ("nope", {}, "unknown model 'nope'"),
        ("frame", {"colour": 3}, "unexpected keyword argument 'colour'"),
        ("frame", {"backbone": "no_such_net"}, "unknown timm backbone 'no_such_net'"),
        ("frame", {"backbone": "efficientnet_b0", "pretrained": True}, "no packaged weights"),
        ("frame", {"pretrained": "/nonexistent/w.pth"}, "/nonexistent/w.pth: pretrained weights file not found"),
        ("frame", {"backbone": TINY, "pooling": "contrast"}, "contrast pooling need an EfficientNet-style"),
        ("frame", {"pooling": "middle"}, "unknown pooling 'middle'"),
    ],
)
def test_user_mistakes_are_one_line_errors(name: str, kwargs: dict, says: str) -> None:
    with pytest.raises(DfdcError, match=says) as e:
        create_model(name, **kwargs)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "backbone, mean, std",
    [("efficientnet_b0", IMAGENET_MEAN, IMAGENET_STD), ("tf_efficientnet_lite0", [0.5] * 3, [0.5] * 3)],
)
def test_default_config_follows_the_backbone(backbone: str, mean: list, std: list) -> None:
    assert create_model("frame", backbone=backbone).default_config == {
        "input_size": 224, "mean": mean, "std": std, "frames": 32,
    }
    sequence = create_model("sequence", backbone=backbone).default_config
    assert (sequence["frames"], sequence["clip_length"]) == (15, 10)  # clips of 10 out of the cache's 15 samples


# --- models -------------------------------------------------------------------------------------


def test_frame_model_gives_one_logit_per_crop_and_learns() -> None:
    torch.manual_seed(0)
    model = create_model("frame", backbone="efficientnet_b0")
    x = torch.randn(3, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 1.0, 1.0])).backward()
    assert model.encoder.conv_stem.weight.grad.abs().sum() > 0
    calibrate_batchnorm(model, x)
    with torch.inference_mode():  # crops are scored independently in eval mode
        assert model(x).std() > 1e-3
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]))


@pytest.mark.parametrize(
    "name, lstm_input", [("sequence", (2, 4, 256, 1, 1)), ("sequence_spatial", (2, 4, 32, 2, 2))]
)
def test_sequence_models_run_the_convlstm_over_time(name: str, lstm_input: tuple) -> None:
    torch.manual_seed(0)
    model = create_model(name, backbone="efficientnet_b0")
    seen = []
    model.lstm.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    clip = torch.randn(2, 4, 3, 64, 64)  # 64 px: efficientnet's feature map is 2x2
    logits = model(clip)
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    assert seen == [lstm_input]  # pooled form: 1x1 maps; spatial form: the reduced feature map
    logits.sum().backward()
    for p in (model.encoder.conv_stem.weight, model.reduce[0].weight, model.lstm.cell.conv.weight):
        assert p.grad.abs().sum() > 0
    calibrate_batchnorm(model, clip)
    with torch.inference_mode():  # the order of the frames matters, each clip is its own
        assert not torch.allclose(model(clip), model(clip.flip(1)), atol=1e-4)
        torch.testing.assert_close(model(clip)[1:], model(clip[1:]))


# --- ConvLSTM -----------------------------------------------------------------------------------


def test_convlstm_shapes_and_state() -> None:
    lstm = ConvLSTM(3, 8, kernel_size=3)
    x = torch.randn(2, 5, 3, 6, 7)
    hidden, (h, c) = lstm(x)
    assert hidden.shape == (2, 5, 8, 6, 7) and h.shape == c.shape == (2, 8, 6, 7)
    assert torch.equal(hidden[:, -1], h)
    # carrying the state on equals running the whole sequence at once
    _, state = lstm(x[:, :2])
    rest, last = lstm(x[:, 2:], state)
    assert torch.allclose(rest, hidden[:, 2:], atol=1e-6) and torch.allclose(last[1], c, atol=1e-6)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTM(3, 8, kernel_size=2)


def test_convlstm_with_1x1_kernel_on_1x1_maps_is_an_lstm() -> None:
    torch.manual_seed(0)
    lstm, conv = nn.LSTM(5, 7, batch_first=True), ConvLSTM(5, 7, kernel_size=1)
    with torch.no_grad():
        weight = torch.cat([lstm.weight_ih_l0, lstm.weight_hh_l0], dim=1)
        conv.cell.conv.weight.copy_(weight[:, :, None, None])
        conv.cell.conv.bias.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
    x = torch.randn(3, 6, 5)
    expected, (h, c) = lstm(x)
    hidden, (conv_h, conv_c) = conv(x[:, :, :, None, None])
    torch.testing.assert_close(hidden[..., 0, 0], expected)
    torch.testing.assert_close(conv_c[..., 0, 0], c[0])


def test_convlstm_memory_spreads_one_pixel_per_step() -> None:
    """A change at one pixel of the first frame reaches the last hidden state exactly within T pixels:
    the state carries it through time, the 3x3 gates move it one pixel per step."""
    torch.manual_seed(0)
    lstm, steps = ConvLSTM(1, 4, kernel_size=3), 3
    x = torch.randn(1, steps, 1, 11, 11)
    changed = x.clone()
    changed[0, 0, 0, 5, 5] += 1.0
    moved = (lstm(changed)[1][0] - lstm(x)[1][0]).abs().amax(dim=(0, 1))  # (11, 11)
    rows, cols = torch.meshgrid(torch.arange(11), torch.arange(11), indexing="ij")
    distance = torch.maximum((rows - 5).abs(), (cols - 5).abs())
    assert (moved[distance <= steps] > 0).all()
    assert (moved[distance > steps] == 0).all()


def test_convlstm_gradient_reaches_the_first_frame() -> None:
    lstm = ConvLSTM(2, 4, kernel_size=3)
    x = torch.randn(1, 6, 2, 5, 5, requires_grad=True)
    lstm(x)[1][0].sum().backward()
    assert x.grad[:, 0].abs().sum() > 0 and lstm.cell.conv.weight.grad.abs().sum() > 0


# --- backbone weights from local files ----------------------------------------------------------


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_backbone(model, lite0_file())
    return model.eval()


def test_lite0_file_loads_exactly(lite0: nn.Module) -> None:
    source = read_state_dict(lite0_file())
    target = lite0.state_dict()
    assert len(source) == len(target) == 296
    for (name, tensor), loaded in zip(source.items(), target.values()):
        assert torch.equal(tensor, loaded), name


def test_lite0_imagenet_classifier_is_sensible(lite0: nn.Module, face_images_dir: Path) -> None:
    torch.manual_seed(0)
    random = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    face = image_tensor(np.asarray(Image.open(face_images_dir / "1face.png")))
    flower = image_tensor(load_sample_image("flower.jpg"))
    with torch.inference_mode():
        assert lite0(flower).argmax().item() == DAISY  # a real photo of an ImageNet class
        logits = lite0(face)  # a face is no ImageNet class: finite, and not what random weights give
        assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
        assert not torch.allclose(logits, random(face), atol=1e-2)


def test_frame_model_with_lite0_weights(lite0: nn.Module) -> None:
    model = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0").eval()
    same = create_model("frame", backbone="tf_efficientnet_lite0", pretrained=True).encoder.state_dict()
    assert all(torch.equal(same[k], v) for k, v in model.encoder.state_dict().items())  # True means "lite0"
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():  # the encoder is the ImageNet model up to its pooled features
        torch.testing.assert_close(model.encoder(x), lite0.forward_head(lite0.forward_features(x), pre_logits=True))


def test_backbone_file_by_name_and_wrong_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = timm.create_model(TINY, pretrained=False)
    torch.save(source.state_dict(), tmp_path / "tiny.pth")
    model = create_model("frame", backbone=TINY, pretrained=tmp_path / "tiny.pth")
    for name, tensor in model.encoder.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[name]), name
    with pytest.raises(DfdcError, match=r"tiny\.pth: .*tensors, but the backbone has"):
        create_model("frame", backbone="tf_efficientnet_lite0", pretrained=tmp_path / "tiny.pth")
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(DfdcError, match=r"notes\.pth: not a torch file"):
        create_model("frame", backbone=TINY, pretrained=tmp_path / "notes.pth")


# --- the 1st-place solution's checkpoints -------------------------------------------------------


class SelimsefClassifier(nn.Module):
    """The layout of selimsef/dfdc_deepfake_challenge's DeepFakeClassifier (training/zoo/classifiers.py)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = timm.create_model(SELIMSEF_BACKBONE, pretrained=False, drop_path_rate=0.2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(2560, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avg_pool(self.encoder.forward_features(x)).flatten(1)
        return self.fc(self.dropout(x))


def test_import_selimsef_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    original = calibrate_batchnorm(SelimsefClassifier(), x)
    state = {"module." + k: v for k, v in original.state_dict().items()}
    assert "module.encoder.classifier.weight" in state and "module.fc.weight" in state
    torch.save({"state_dict": state, "epoch": 40, "bce_best": 0.19}, tmp_path / "final_111_b7")

    path = import_selimsef(tmp_path / "final_111_b7", tmp_path / "b7.pt")
    model, config = load_checkpoint(path)
    assert (config.model, config.input_size, config.frames) == ("frame", 380, 32)
    assert (config.mean, config.std, config.margin) == (IMAGENET_MEAN, IMAGENET_STD, 1 / 3)
    with torch.inference_mode():
        expected = original(x)[:, 0]
        assert (expected[0] - expected[1]).abs() > 1e-3  # outputs that depend on the encoder
        torch.testing.assert_close(model(x), expected)

    torch.save({"state_dict": {k: v for k, v in state.items() if "fc." not in k}}, tmp_path / "cut")
    with pytest.raises(DfdcError, match=r"cut: tensors do not fit the model: 2 missing \['fc.weight'"):
        import_selimsef(tmp_path / "cut", tmp_path / "cut.pt")
    assert not (tmp_path / "cut.pt").exists()


def test_track_alignment_puts_each_real_track_at_the_pooled_statistics(face_images_dir: Path) -> None:
    model = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0", align_block=-2).eval()
    assert model.align_block == len(model.encoder.blocks) - 2 and model.model_kwargs["align_block"] == -2
    rng = np.random.default_rng(0)
    tracks = []
    for name in ("1face.png", "3faces.png", "4faces.png"):  # three scenes: their maps differ per channel
        image = np.asarray(Image.open(face_images_dir / name).convert("RGB"))
        crops = [image_tensor(np.roll(image, tuple(int(s) for s in rng.integers(-10, 10, 2)), (0, 1)), 96)
                 for _ in range(6)]
        with torch.inference_mode():
            tracks.append(model.early(torch.cat(crops), model.align_block))
    stats = [track_stats(t) for t in tracks]
    model.align.fit(stats)
    # the target is the statistics of all three tracks' maps pooled (equal lengths), EPS aside
    std, mean = torch.std_mean(torch.cat(tracks), dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(model.align.mean, mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.align.std, std, atol=3e-3, rtol=1e-2)
    assert ((stats[0][0] - stats[1][0]).abs() / model.align.std).max() > 0.5  # the scenes' maps really differ
    with torch.inference_mode():
        for t in tracks:  # each track alone lands on the target
            got_std, got_mean = torch.std_mean(model.align(t), dim=(0, 2, 3), correction=0)
            torch.testing.assert_close(got_mean, model.align.mean, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(got_std, model.align.std, atol=3e-3, rtol=1e-2)
        # a crop's score depends on its track, not on the order of the track's crops
        x = torch.cat([image_tensor(np.asarray(Image.open(face_images_dir / n).convert("RGB")), 96)
                       for n in ("1face.png", "3faces.png", "4faces.png")])
        order = torch.tensor([2, 0, 1])
        torch.testing.assert_close(model(x)[order], model(x[order]))
        assert (model(x)[:2] - model(x[:2])).abs().max() > 1e-3
    with pytest.raises(DfdcError, match="pooling 'last'"):
        create_model("frame", backbone="tf_efficientnet_lite0", pooling="multiscale", align_block=-2)


@pytest.mark.parametrize("pooling", ["last", "contrast"])
def test_early_then_late_blocks_are_the_whole_forward(face_images_dir: Path, pooling: str) -> None:
    """dfdc cv trains the late blocks on cached early maps; predict runs the unaligned model whole."""
    torch.manual_seed(0)
    model = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0", pooling=pooling).eval()
    x = torch.cat([image_tensor(np.asarray(Image.open(face_images_dir / n).convert("RGB")), 128)
                   for n in ("1face.png", "3faces.png", "4faces.png")])
    with torch.inference_mode():
        whole = model(x)
        assert whole.std() > 1e-3
        for block in (1, len(model.encoder.blocks) - 2):
            torch.testing.assert_close(model.late(model.early(x, block), block), whole, atol=1e-4, rtol=1e-4)


def test_contrast_pooling_is_the_face_box_less_the_ring_around_it(face_images_dir: Path) -> None:
    """A crop is its face box widened by the margin (0.3 of the side) on every side, so the box spans
    the central 1/1.6 of the crop: at 224 px the inner 5x5 cells of Lite0's 7x7 last map, the ring the
    other 24. Contrast pooling feeds the head the box's mean less the ring's; a wider margin shrinks the
    box to fewer cells."""
    x = torch.cat([image_tensor(np.asarray(Image.open(face_images_dir / n).convert("RGB")))
                   for n in ("1face.png", "3faces.png", "4faces.png")])
    torch.manual_seed(0)
    model = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0", pooling="contrast").eval()
    wide = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0", pooling="contrast", margin=1.0)
    with torch.inference_mode():
        m = model.encoder.forward_features(x)
        assert m.shape[-2:] == (7, 7)
        for net, box in ((model, slice(1, 6)), (wide.eval(), slice(2, 5))):  # margin 1.0: the central third
            inner = m[..., box, box]
            ring = (m.sum((2, 3)) - inner.sum((2, 3))) / (49 - inner.shape[-1] * inner.shape[-2])
            torch.testing.assert_close(net.features(x), inner.mean((2, 3)) - ring, atol=1e-4, rtol=1e-4)
        assert not torch.allclose(model.features(x), m.mean((2, 3)), atol=1e-2)  # not the plain average
