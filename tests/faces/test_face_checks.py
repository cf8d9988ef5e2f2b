"""Only faces become tracks, close-ups give whole faces, tile seams lose no face, one crop scale per track.

On videos of ../shared/data/real (FaceForensics++, DFDC), each checked on the contact sheets of
`dfdc faces` before and after the change.
"""

import numpy as np
import pytest
import torch
from helpers import ffmpeg

from dfdc.defaults import CROP_MARGIN
from dfdc.faces.boxes import box_side, face_like
from dfdc.faces.crops import BLACK, crop_face, picture_bounds, square_box
from dfdc.faces.detector import FaceDetector
from dfdc.faces.find import find_faces
from dfdc.faces.tracks import Track, select_tracks, smooth_sizes
from dfdc.inference.predict import prepare
from dfdc.video.read import read_video


@pytest.fixture(scope="module")
def detector(weights_dir):
    return FaceDetector(weights_dir)


@pytest.fixture(scope="module")
def real_dir(shared):
    """127 videos from FF++, Celeb-DF and DFDC (see its SOURCES.md)."""
    return shared / "data" / "real"


def _centre(box):
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


# (video, presenter's face centre, where the non-face track was, what it is): each was a track of its
# own before, seen on the contact sheets.
NON_FACES = [
    ("ffpp_183_253/original-youtube_c40_183.mp4", (738, 296), (164, 177), "the flag's stars (24/32 frames)"),
    ("ffpp_183_253/original-youtube_c23_183.mp4", (738, 298), (160, 170), "the flag's stars (22/32, after the change)"),
    ("ffpp_183_253/original-youtube_c23_253.mp4", (872, 309), (336, 264), "a caption (17/32 frames)"),
]


@pytest.mark.parametrize("name,face,other,what", NON_FACES)
def test_a_non_face_track_is_dropped_and_reported(detector, real_dir, name, face, other, what):
    faces = find_faces(read_video(real_dir / name, 32), detector, size=64)
    assert len(faces.tracks) == 1, what
    assert np.abs(_centre(np.median(faces.tracks[0].boxes, 0)) - face).max() < 40
    not_faces = [d for d in faces.dropped if d.reason.startswith("not a face")]
    assert any(np.abs(_centre(np.median(d.track.boxes, 0)) - other).max() < 60 for d in not_faces), what
    report = faces.to_dict()["dropped_tracks"]
    assert len(report) == len(faces.dropped) and all(d["reason"] and d["frames"] for d in report)
    # the predict report, from predict's own preparation of the video, lists them the same
    prepared = prepare(real_dir / name, 32, detector, {(64, CROP_MARGIN)}, detect_every=1)
    assert prepared.faces.to_dict()["dropped_tracks"] == report


def test_a_face_crossing_the_frame_is_followed_between_whole_detections(detector, real_dir):
    """A kitchen pan: the face crosses a 1920 px frame in 10 s, ~70 px between sampled frames. With
    whole frames detected on every 4th one only, it is followed across, not lost between them. And on
    a street walk, the poster on a parked truck (a track on every frame) is still not a face: a look
    around it finds it again on few of the frames between."""
    video = read_video(real_dir / "ffpp_actors/original-actors_c40_01__kitchen_pan.mp4", 32)
    faces = find_faces(video, detector, size=64, detect_every=4)
    main = faces.tracks[0]
    xs = [_centre(b)[0] for b in main.boxes]
    assert len(main.indices) >= 26 and sum(main.detected) >= 24
    assert min(xs) < 700 and max(xs) > 1700
    walk = find_faces(read_video(real_dir / "ffpp_actors/original-actors_c40_09__walking_down_street_outside_angry.mp4",
                                 32), detector, size=64, detect_every=4)
    assert any(d.reason.startswith("not a face") and abs(_centre(np.median(d.track.boxes, 0))[0] - 1485) < 60
               for d in walk.dropped)
    assert all(abs(_centre(np.median(t.boxes, 0))[0] - 1485) > 60 for t in walk.tracks)


def test_a_close_up_keeps_the_face_not_its_ear(detector, real_dir):
    """aapnvogymq (1080x1080, a face ~740 px): the main track was the ear (25/32 frames) and the
    face only a second track (20/32, lost where a tile's chin won over it); hair made a third."""
    faces = find_faces(read_video(real_dir / "dfdc" / "aapnvogymq.mp4", 32), detector, size=64)
    assert len(faces.tracks) == 1
    main = faces.tracks[0]
    assert sum(main.detected) >= 31
    assert all(600 < box_side(b) < 900 for b in main.boxes)
    assert np.abs(_centre(np.median(main.boxes, 0)) - (590, 610)).max() < 60
    assert any(d.reason.startswith("not a face") for d in faces.dropped)


@pytest.fixture(scope="module")
def close_up(real_dir, tmp_path_factory):
    """A 1280x720 close-up whose face (~770 px) is taller than the frame: a DFDC video's 1080x608
    band through the face, scaled up."""
    out = tmp_path_factory.mktemp("close") / "close_up.mp4"
    ffmpeg("-i", real_dir / "dfdc" / "btiysiskpf.mp4", "-t", 2, "-vf", "crop=1080:608:0:330,scale=1280:720",
           "-c:v", "libx264", "-preset", "ultrafast", "-an", out)
    return out


def test_a_close_up_gives_whole_face_crops_on_every_frame(detector, close_up):
    """Before: two tracks, the whole face (15/32 frames) and the nose and mouth a tile saw
    (18/32); crops cut to the frame's height showed the face from the eyes to the mouth."""
    faces = find_faces(read_video(close_up, 16), detector, size=128)
    assert len(faces.tracks) == 1
    main, crops = faces.tracks[0], faces.crops[0]
    assert sum(main.detected) == 16
    assert all(box_side(b) > 0.95 * 720 for b in main.boxes)  # the whole face, not a part
    # In each crop the detector sees one whole face in the middle, at 1 / (1 + 2 * margin) of the crop.
    for found in detector.model.detect(torch.from_numpy(crops)):
        assert len(found.boxes) == 1
        side = box_side(found.boxes[0]) / 128
        assert 0.45 < side < 0.8 and np.abs(_centre(found.boxes[0]) - 64).max() < 20


def test_a_face_on_a_tile_seam_is_found_whole(detector, sample_dir):
    """A 217 px face moved across a 1920x1080 frame, over the seams of the tiles: found once, by a
    tile, at one size wherever it is. Before, the tiles overlapped by 120 px and a face on a seam
    was cut by both: the coarse whole view found it, 14-19% larger than the tiles did."""
    frame = read_video(sample_dir / "anndvqgoko.mp4", 1).frames[0]
    face = frame[331 - 180:331 + 180, 969 - 180:969 + 180]  # the face (217 px) and some of its surroundings
    frames = []
    for x in range(480, 1460, 70):
        canvas = np.full((1080, 1920, 3), 90, np.uint8)
        canvas[300 - 180:300 + 180, x - 180:x + 180] = face
        frames.append(canvas)
    sides = []
    for x, found in zip(range(480, 1460, 70), detector(np.stack(frames))):
        assert len(found.boxes) == 1, x
        assert abs(_centre(found.boxes[0])[0] - x) < 30
        sides.append(box_side(found.boxes[0]))
    assert 0.85 * 217 < np.median(sides) < 1.15 * 217
    assert np.max(np.abs(np.array(sides) / np.median(sides) - 1)) < 0.1


def test_landmarks_tell_a_face_from_a_turned_pattern():
    box = np.array([[100, 100, 200, 200]], np.float32)
    upright = np.array([[[130, 130], [170, 130], [150, 155], [150, 180], [105, 140], [195, 140]]], np.float32)
    assert face_like(box, upright).all()
    centre = np.array([150, 150], np.float32)
    turned = (upright - centre) @ np.array([[0, 1], [-1, 0]], np.float32) + centre  # 90 degrees
    assert not face_like(box, turned).any()
    flipped = upright.copy()
    flipped[0, 3, 1] = 120  # mouth above the eyes
    assert not face_like(box, flipped).any()


def _track(sides, start=0):
    t = Track(0)
    for i, s in enumerate(sides):
        t.add(start + i, np.array([500 - s / 2, 300 - s / 2, 500 + s / 2, 300 + s / 2]), 0.9)
    return t


def test_box_sizes_are_smoothed_to_one_scale_unless_the_face_grows():
    rng = np.random.default_rng(0)
    jitter = smooth_sizes(_track(120 * np.exp(rng.normal(0, 0.08, 32))))
    sides = box_side(np.stack(jitter.boxes))
    assert np.ptp(sides) < 1e-3  # one crop scale
    assert np.allclose(_centre(jitter.boxes[5]), (500, 300))
    grows = smooth_sizes(_track(np.r_[np.full(12, 100.0), np.full(20, 180.0)]))
    sides = box_side(np.stack(grows.boxes))
    assert sides[0] == pytest.approx(100, rel=0.05) and sides[-1] == pytest.approx(180, rel=0.05)
    assert np.abs(np.diff(np.log(sides))).max() <= np.log(1.1) + 1e-6


def test_select_tracks_drops_a_failed_check_and_the_next_becomes_main():
    sign, face, weak = _track([80] * 30), _track([120] * 28), _track([60] * 9)
    kept, dropped = select_tracks([sign, face, weak], 32, lambda t: "not a face: test" if t is sign else None)
    assert kept == [face] and face.id == 0
    assert [d.track for d in dropped] == [sign, weak]
    assert dropped[0].reason == "not a face: test" and dropped[1].reason.startswith("weak beside the main track")
    assert dropped[0].to_dict()["reason"] == "not a face: test"


def test_a_crop_of_a_face_taller_than_the_frame_is_padded_not_cut():
    frame = np.full((100, 200, 3), 255, np.uint8)
    crop = crop_face(frame, np.array([60, -30, 180, 130]), 64, margin=0)  # 160 px tall in a 100 px frame
    assert crop.shape == (64, 64, 3)
    assert crop[:8].max() == 0 and crop[-8:].max() == 0  # black above and below the frame
    assert crop[28:36].min() == 255


@pytest.mark.parametrize("video", ["00279_segment_1.mp4", "id31_0007_segment_1.mp4", "id0_id1_0005_segment_1.mp4"])
def test_a_face_crop_video_on_a_black_canvas_gives_crops_without_black_bars(detector, real_dir, video):
    """Celeb-DF's videos are face crops pasted on a black 298x298 canvas: the crops stay inside the
    picture, so no crop shows the bars that told the model these videos apart (all 14 scored FAKE)."""
    frames = read_video(real_dir / "celebdf" / video, 8)
    x0, y0, x1, y1 = picture_bounds(frames.frames)
    assert 0 < x1 - x0 < 298 and 0 < y1 - y0 <= 298  # the canvas is wider than its picture
    faces = find_faces(frames, detector, size=64, margin=CROP_MARGIN)
    assert len(faces.tracks) == 1 and len(faces.crops[0]) == 8
    for box, crop in zip(faces.tracks[0].boxes, faces.crops[0]):
        x, y, side = square_box(box, CROP_MARGIN, (x0, y0, x1, y1))
        assert x0 <= x and y0 <= y and x + side <= x1 and y + side <= y1  # inside the picture
        assert (crop.max(axis=(0, 2)) > BLACK).all() and (crop.max(axis=(1, 2)) > BLACK).all()  # no black bar


def test_a_full_frame_video_is_all_picture(sample_dir):
    video = read_video(sample_dir / "abofeumbvv.mp4", 8)
    assert picture_bounds(video.frames) == (0, 0, 1920, 1080)
