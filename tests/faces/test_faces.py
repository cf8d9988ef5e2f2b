"""The face engine on real faces: detector, tracks and crops on the DFDC sample videos."""

import itertools
import threading

import cv2
import numpy as np
import pytest
import torch
from helpers import write_video

from dfdc.defaults import DETECT_EVERY
from dfdc.faces.boxes import box_iou
from dfdc.faces.detector import (
    FaceDetector,
    Window,
    _halvings,
    _on_grid,
    _square,
    _squares,
    windows,
)
from dfdc.faces.find import find_faces, track_faces
from dfdc.video.read import read_video

# First-frame face centres and sizes seen by eye on the contact sheets (frame pixels).
SEEN = {
    "abofeumbvv.mp4": (948, 244, 116),
    "abqwwspghj.mp4": (886, 233, 181),
    "anndvqgoko.mp4": (969, 331, 217),
    "knqhpwoigk.mp4": (1056, 339, 144),
    "yhffcuhhjy.mp4": (413, 385, 113),
}


@pytest.fixture(scope="module")
def detector(weights_dir):
    return FaceDetector(weights_dir)


def _image(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("name,count", [("1face.png", 1), ("3faces.png", 3), ("4faces.png", 4)])
def test_face_images_yield_their_faces(detector, face_images_dir, name, count):
    found = detector(_image(face_images_dir / name)[None])[0]
    assert len(found.scores) == count
    sides = found.boxes[:, 2:] - found.boxes[:, :2]
    assert np.all(sides > 8) and np.all(sides < 128)


@pytest.mark.parametrize("height,width,count", [(1080, 1920, 6), (1280, 720, 6), (720, 1280, 6), (1080, 1080, 4),
                                                 (480, 854, 6), (480, 640, 4), (298, 298, 4)])
def test_windows_cover_the_frame_with_overlap(height, width, count):
    """Tiles (as many as the 2/3-side tiles were, or fewer) overlap by at least the smallest face the
    whole view finds, 1/8 of the long side: a face cut by every tile it touches is one the whole view
    finds. Before, 1920x1080's tiles overlapped by 120 px and 720x1280's by 80."""
    wins = windows(height, width)
    assert wins[0].side == max(height, width)  # the whole frame
    tiles = wins[1:]
    side = tiles[0].side
    assert len(tiles) == count and all(w.side == side for w in tiles) and side <= 0.75 * min(height, width) + 1
    xs, ys = sorted({w.x for w in tiles}), sorted({w.y for w in tiles})
    assert xs[0] == ys[0] == 0 and xs[-1] + side == width and ys[-1] + side == height
    overlaps = [a + side - b for a, b in itertools.pairwise(xs)] + [a + side - b for a, b in itertools.pairwise(ys)]
    assert min(overlaps) >= max(height, width) / 8


@pytest.mark.parametrize("size", [128, 256])
def test_a_window_on_the_grid_keeps_its_halvings_and_its_corner_on_that_grid(size):
    """`_squares` cuts a window from the frame halved `_halvings(side)` times, at its corner and side
    divided by 2**k: the window moved onto that grid must need the same halvings, or its corner is cut
    a pixel off (a 1023 px window at 128 px rounds up to 1024, which is halved once more)."""
    for side in range(2, 4200):
        for x, y in ((0, 0), (37, -21), (1001, 555)):
            w = _on_grid(Window(x, y, side), size)
            k = _halvings(side, size)
            assert _halvings(w.side, size) == k, (side, w)
            assert w.x % (1 << k) == w.y % (1 << k) == w.side % (1 << k) == 0
            assert abs(w.side - side) < (1 << k) and abs(w.x - x) <= (1 << k) // 2


@pytest.mark.parametrize("name", ["abofeumbvv.mp4", "yhffcuhhjy.mp4"])
def test_large_windows_cut_from_the_halved_frame_find_what_one_resize_finds(detector, sample_dir, name):
    """The whole view and the tiles are cut from the frame halved (INTER_AREA is fast at a factor of
    2, slow at 6.25 from an 800 px tile): on a 1080p frame and a portrait, the patches BlazeFace sees
    are those of one resize within half a grey level on average, and it finds the same faces in them."""
    frame = read_video(sample_dir / name, 1).frames[0]
    wins = [_on_grid(w, 128) for w in windows(*frame.shape[:2])]
    assert all(_halvings(w.side, 128) >= 1 for w in wins)
    halved = np.stack(_squares(frame, wins, 128))
    direct = np.stack([_square(frame, w, 128) for w in wins])
    assert np.abs(halved.astype(int) - direct).mean(axis=(1, 2, 3)).max() < 0.5
    faces = 0
    for a, b in zip(detector.model.detect(torch.from_numpy(halved)), detector.model.detect(torch.from_numpy(direct))):
        assert len(a.boxes) == len(b.boxes)
        if len(a.boxes):
            assert box_iou(a.boxes, b.boxes).max(1).min() > 0.9
            faces += len(a.boxes)
    assert faces >= 2  # the face, in the whole view and a tile at least


@pytest.fixture(scope="module")
def sample_faces(detector, sample_dir):
    """Tracks and crops of every sample video, found once for this module."""
    found = {}
    for name in SEEN:
        faces = find_faces(read_video(sample_dir / name, 32), detector, size=128)
        faces.video.frames = np.empty((0, 1, 1, 3), np.uint8)  # keep memory low: the crops are what we check
        found[name] = faces
    return found


@pytest.mark.parametrize("name", sorted(SEEN))
def test_main_track_covers_the_video_and_lies_on_the_face(sample_faces, name):
    faces = sample_faces[name]
    main = faces.tracks[0]
    assert sum(main.detected) >= 31
    assert len(main.indices) == 32 and faces.crops[0].shape == (32, 128, 128, 3)
    cx, cy, side = SEEN[name]
    box = main.boxes[0]
    assert abs((box[0] + box[2]) / 2 - cx) < 30 and abs((box[1] + box[3]) / 2 - cy) < 30
    assert 0.75 * side < box[2] - box[0] < 1.3 * side
    # boxes follow the face without jumps (faces move little between samples)
    centres = np.array([(b[:2] + b[2:]) / 2 for b in main.boxes])
    assert np.abs(np.diff(centres, axis=0)).max() < 0.8 * side


@pytest.mark.parametrize("name", sorted(SEEN))
def test_box_sides_change_by_less_than_15_percent_between_neighbouring_frames(sample_faces, name):
    """One crop scale per track: on yhffcuhhjy sides went 115 -> 74 -> 190 px between nearby frames."""
    faces = sample_faces[name]
    assert faces.tracks and not faces.dropped
    for track in faces.tracks:
        sides = np.array([max(b[2] - b[0], b[3] - b[1]) for b in track.boxes])
        assert np.all(np.abs(np.diff(np.log(sides))) < np.log(1.15))


def test_two_people_give_two_tracks(detector, sample_dir, tmp_path):
    """Two real faces side by side, moving a little, written as an mp4 and read back."""
    left = read_video(sample_dir / "knqhpwoigk.mp4", 12).frames
    right = read_video(sample_dir / "anndvqgoko.mp4", 12).frames
    frames = []
    for t, (a, b) in enumerate(zip(left, right)):
        canvas = np.zeros((720, 1280, 3), np.uint8)
        canvas[100:600, 40 + t * 2:540 + t * 2] = a[90:590, 806:1306]
        canvas[120:620, 700:1200] = b[78:578, 722:1222]
        frames.append(canvas)
    video = read_video(write_video(tmp_path / "two.mp4", frames), 12)
    faces = find_faces(video, detector, size=96)
    assert len(faces.tracks) == 2
    xs = sorted((t.boxes[0][0] + t.boxes[0][2]) / 2 for t in faces.tracks)
    assert xs[0] < 640 < xs[1]
    assert all(sum(t.detected) >= 10 for t in faces.tracks)


@pytest.mark.parametrize("name", sorted(SEEN))
def test_detecting_every_fourth_frame_follows_the_face_between(detector, sample_dir, sample_faces, name):
    """Whole frames detected on every 4th sampled frame, the face found again around its box on the
    others: the same track, found (not interpolated) on 30 of 32 frames or more, for at most 60% of the
    windows that detecting every frame whole takes (the tiles alone; its second looks come on top)."""
    video = read_video(sample_dir / name, 32)
    every = sample_faces[name].tracks[0]
    before = detector.windows_run
    faces = find_faces(video, detector, size=64, detect_every=4)
    work = detector.windows_run - before
    sparse = faces.tracks[0]
    assert len(faces.tracks) == 1 and sparse.indices == every.indices
    assert sum(sparse.detected) >= 30
    err = np.abs(np.stack(sparse.boxes) - np.stack(every.boxes)).max()
    assert err < 0.25 * SEEN[name][2]
    assert work <= 0.6 * len(video.indices) * len(windows(*video.frames.shape[1:3]))


def test_blazeface_port_matches_the_reference_output(weights_dir, face_images_dir):
    """The detection hollance/BlazeFace-PyTorch's Inference notebook prints for 1face.png with the
    front model (ymin, xmin, ymax, xmax normalised, then the score), reproduced by our module."""
    from dfdc.faces.blazeface import load_blazeface

    model = load_blazeface(weights_dir)
    found = model.detect(torch.from_numpy(_image(face_images_dir / "1face.png")[None]))[0]
    ymin, xmin, ymax, xmax, score = 0.2714, 0.3171, 0.4416, 0.4873, 0.9960
    assert len(found.scores) == 1
    np.testing.assert_allclose(found.boxes[0] / 128, [xmin, ymin, xmax, ymax], atol=1e-4)
    assert found.scores[0] == pytest.approx(score, abs=1e-4)


def test_a_network_in_its_own_thread_gives_each_caller_its_own_faces(detector, weights_dir, sample_dir):
    """On CUDA the detector's network runs in one thread of its own while predict's workers call it
    at once: each worker must get the tracks of its own video, the same as a network run in the caller's
    thread gives."""
    names = ["abofeumbvv.mp4", "yhffcuhhjy.mp4"]  # a landscape and a portrait video: other frame shapes
    videos = [read_video(sample_dir / name, 32) for name in names]
    want = [track_faces(v, detector, DETECT_EVERY) for v in videos]
    shared = FaceDetector(weights_dir, own_thread=True)
    ran_in, detect = set(), shared.model.detect

    def recorded(batch):
        ran_in.add(threading.current_thread().name)
        return detect(batch)

    shared.model.detect = recorded
    got = [None, None]

    def work(i):
        got[i] = track_faces(videos[i], shared, DETECT_EVERY)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(want, got):
        assert len(a) >= 1 and [t.indices for t in a] == [t.indices for t in b]
        for ta, tb in zip(a, b):
            np.testing.assert_array_equal(np.stack(ta.boxes), np.stack(tb.boxes))
    assert len(ran_in) == 1 and ran_in.pop().startswith("detector")  # one thread ran every network call


def test_batches_padded_to_one_shape_find_the_same_faces(detector, weights_dir, sample_dir):
    """On CUDA every network batch is padded to one shape (cuDNN plans its kernels per shape): the
    padding's detections are dropped, so the tracks, and the work counted, are the unpadded batches'."""
    video = read_video(sample_dir / "yhffcuhhjy.mp4", 32)  # the portrait video: tiles, looks and follows
    before = detector.windows_run
    want = track_faces(video, detector, DETECT_EVERY)
    padded = FaceDetector(weights_dir, one_shape=True)
    shapes, detect = set(), padded.model.detect

    def recorded(batch):
        shapes.add(tuple(batch.shape))
        return detect(batch)

    padded.model.detect = recorded
    got = track_faces(video, padded, DETECT_EVERY)
    assert shapes == {(padded.batch_size, 128, 128, 3)}
    assert padded.windows_run == detector.windows_run - before
    assert len(want) >= 1 and [t.indices for t in want] == [t.indices for t in got]
    for a, b in zip(want, got):
        np.testing.assert_allclose(np.stack(a.boxes), np.stack(b.boxes), atol=1e-3)


def test_the_cpus_small_batches_of_windows_find_what_one_large_batch_finds(detector, weights_dir, sample_dir):
    """On a CPU the detector runs 8 windows per network call (`scoring_batch`: 1.9 ms a window against
    3.1 in batches of 64, whose activations outgrow the cache); the tracks and boxes stay the same."""
    video = read_video(sample_dir / "abofeumbvv.mp4", 32)
    sizes, detect = set(), detector.model.detect

    def recorded(batch):
        sizes.add(len(batch))
        return detect(batch)

    detector.model.detect = recorded
    try:
        small = track_faces(video, detector, DETECT_EVERY)
    finally:
        detector.model.detect = detect
    large = track_faces(video, FaceDetector(weights_dir, batch_size=64), DETECT_EVERY)
    assert max(sizes) == detector.batch_size == 8
    assert len(small) >= 1 and [t.indices for t in small] == [t.indices for t in large]
    for a, b in zip(small, large):
        np.testing.assert_allclose(np.stack(a.boxes), np.stack(b.boxes), atol=1e-3)
