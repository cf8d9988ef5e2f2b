"""make_sample on the real faces of the shared data: DFDC-shaped, decodable, deterministic, fakes in the face."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from dfdc.errors import DfdcError
from dfdc.faces.blazeface import load_blazeface
from dfdc.metadata import read_metadata
from dfdc.sample.synth import make_sample
from dfdc.video.write import VideoWriter, video_codec

SIZE = (320, 180)
FRAMES = 12  # 1 s at 12 fps


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    """8 videos from the default sources (the five DFDC videos and the face images); with this
    seed, a two-person scene with 3 fakes and two portrait scenes with 1 fake each."""
    return make_sample(tmp_path_factory.mktemp("synth") / "sample", videos=8, seed=2, size=SIZE,
                       seconds=1.0, fps=12, portrait=0.3, two_people=0.3, shared=shared)


def decode_av(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def decode_cv(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return np.stack(frames)


def test_metadata_reads_back(sample: Path) -> None:
    df = read_metadata(sample)
    assert len(df) == 8 and df.attrs["problems"] == {}
    assert all(re.fullmatch(r"[a-z]{10}\.mp4", n) for n in df["name"])
    by_name = df.set_index("name")
    fakes, reals = df[df["label"] == "FAKE"], df[df["label"] == "REAL"]
    assert 1 <= len(reals) < len(fakes)
    assert (by_name.loc[fakes["original"], "label"] == "REAL").all()  # every original is here and REAL
    assert (fakes["cluster"] == fakes["original"]).all() and (reals["cluster"] == reals["name"]).all()
    assert fakes.groupby("original").size().between(1, 3).all()
    submission = pd.read_csv(sample / "sample_submission.csv")
    assert list(submission.columns) == ["filename", "label"]
    assert sorted(submission["filename"]) == sorted(df["name"]) and (submission["label"] == 0.5).all()
    faces = json.loads((sample / "face_boxes.json").read_text())
    assert sorted(faces) == sorted(df["name"])
    assert sorted(len(f["fake"]) for f in faces.values()) == [1] * 4 + [2] * 4
    for row in df.itertuples():
        truth = faces[row.name]
        assert len(truth["boxes"]) == FRAMES
        assert any(truth["fake"]) == (row.label == "FAKE")
        if row.label == "FAKE":
            assert truth["boxes"] == faces[row.original]["boxes"]  # same scene as its original


def test_videos_decode_with_pyav_and_opencv(sample: Path) -> None:
    shapes = set()
    for path in sorted(sample.glob("*.mp4")):
        frames = decode_av(path)
        assert frames.shape[0] == FRAMES
        assert frames.shape[1:3] in [SIZE[::-1], SIZE]  # landscape or portrait
        shapes.add(frames.shape[1:3])
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == ("h264" if video_codec() == "libx264" else "mpeg4")
        bgr = decode_cv(path)
        assert bgr.shape == frames.shape
        assert np.abs(bgr[..., ::-1].astype(int) - frames).mean() < 3  # same pictures, up to colour conversion
    assert shapes == {SIZE[::-1], SIZE}  # this seed makes portrait videos too


def test_fakes_differ_in_the_face_only(sample: Path) -> None:
    df = read_metadata(sample)
    faces = json.loads((sample / "face_boxes.json").read_text())
    for row in df[df["label"] == "FAKE"].itertuples():
        fake, real = decode_av(sample / row.name).astype(np.float32), decode_av(sample / row.original)
        diff = np.abs(fake - real).mean(-1)
        inside = np.zeros(diff.shape, bool)
        for t, boxes in enumerate(faces[row.name]["boxes"]):
            for (x0, y0, x1, y1), altered in zip(boxes, faces[row.name]["fake"]):
                if altered:
                    inside[t, max(int(y0), 0):int(y1), max(int(x0), 0):int(x1)] = True
        assert diff[inside].mean() > 8 * diff[~inside].mean(), row.name
        assert abs(fake.mean() - real.mean()) < 0.3, row.name  # brightness gives nothing away


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def test_blazeface_finds_the_placed_faces(sample: Path, weights_dir: Path) -> None:
    detector = load_blazeface(weights_dir)
    faces = json.loads((sample / "face_boxes.json").read_text())
    crops, truths = [], []
    for name in sorted(faces)[:4]:
        frames = decode_av(sample / name)
        for t in (0, FRAMES // 2, FRAMES - 1):
            for box in np.array(faces[name]["boxes"][t]):
                # a square three faces wide around the true box, as a detector's tile would see it
                side = 3 * (box[2] - box[0])
                x0, y0 = (box[:2] + box[2:]) / 2 - side / 2
                k = 128 / side
                m = np.float32([[k, 0, -k * x0], [0, k, -k * y0]])
                crops.append(cv2.warpAffine(frames[t], m, (128, 128), borderMode=cv2.BORDER_REFLECT))
                truths.append((box - [x0, y0, x0, y0]) * k)
    found = [any(iou(b, truth) > 0.4 for b in det.boxes)
             for det, truth in zip(detector.detect(torch.from_numpy(np.stack(crops))), truths)]
    assert np.mean(found) >= 0.8, found


def test_same_seed_same_dataset(tmp_path: Path, shared: Path) -> None:
    sources = [shared / "data" / "dfdc_sample" / "knqhpwoigk.mp4", shared / "data" / "face_images"]
    kw = dict(videos=4, size=(128, 96), seconds=0.5, fps=10, portrait=0.5, two_people=0.5,
              faces_from=sources, shared=shared)
    a, b = (make_sample(tmp_path / d, seed=7, **kw) for d in ("a", "b"))
    c = make_sample(tmp_path / "c", seed=8, **kw)
    for name in ("metadata.json", "face_boxes.json", "sample_submission.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "metadata.json").read_bytes() != (c / "metadata.json").read_bytes()
    videos = sorted(p.name for p in a.glob("*.mp4"))
    assert len(videos) == 4 and videos == sorted(p.name for p in b.glob("*.mp4"))
    for name in videos:
        assert np.array_equal(decode_av(a / name), decode_av(b / name)), name


def test_parts(tmp_path: Path, shared: Path) -> None:
    out = make_sample(tmp_path / "parts", videos=7, seed=2, size=(96, 64), seconds=0.3, fps=10, parts=3,
                      faces_from=shared / "data" / "face_images", shared=shared)
    df = read_metadata(out, "0-2")
    assert len(df) == 7 and df.attrs["problems"] == {}
    assert df["part"].nunique() > 1
    assert (df.groupby("cluster")["part"].nunique() == 1).all()  # a fake lives beside its original
    assert len(pd.read_csv(out / "sample_submission.csv")) == 7


def test_mistakes_are_one_line_errors(tmp_path: Path, shared: Path) -> None:
    images = shared / "data" / "face_images"
    with pytest.raises(DfdcError, match="size must be even"):
        make_sample(tmp_path / "a", size=(321, 180), faces_from=images, shared=shared)
    with pytest.raises(DfdcError, match="fakes_per_original"):
        make_sample(tmp_path / "a", fakes_per_original=(3, 1), faces_from=images, shared=shared)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    with pytest.raises(DfdcError, match="not an empty folder") as err:
        make_sample(tmp_path / "full", faces_from=images, shared=shared)
    assert err.value.path == tmp_path / "full"
    with pytest.raises(DfdcError, match="face source not found"):
        make_sample(tmp_path / "a", faces_from=tmp_path / "nowhere", shared=shared)
    blank = tmp_path / "blank"
    blank.mkdir()
    cv2.imwrite(str(blank / "wall.png"), np.full((200, 300, 3), 128, np.uint8))
    (blank / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(DfdcError, match="no faces"):
        make_sample(tmp_path / "a", faces_from=blank, shared=shared)
    assert not (tmp_path / "a").exists()  # nothing half-written


def test_mpeg4_fallback_writer(tmp_path: Path) -> None:
    """The codec used where PyAV lacks libx264 also decodes with both readers."""
    rng = np.random.default_rng(0)
    frames = [cv2.GaussianBlur(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8), (0, 0), 3) for _ in range(5)]
    with VideoWriter(tmp_path / "m.mp4", (96, 64), 10.0, codec="mpeg4") as writer:
        for frame in frames:
            writer.write(frame)
    decoded = decode_av(tmp_path / "m.mp4")
    assert decoded.shape == (5, 64, 96, 3) and decode_cv(tmp_path / "m.mp4").shape == (5, 64, 96, 3)
    assert np.abs(decoded.astype(int) - np.stack(frames)).mean() < 8
