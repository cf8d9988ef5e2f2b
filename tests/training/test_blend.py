"""Self-blended fakes: a real face crop blended with an altered copy of itself, seam on the face only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfdc.defaults import CROP_MARGIN
from dfdc.faces.crops import crop_face
from dfdc.faces.detector import create_detector
from dfdc.training.augment import ClipAugment
from dfdc.training.blend import draw_blend, self_blend


@pytest.fixture(scope="module")
def crop(face_images_dir, weights_dir) -> np.ndarray:
    """A 224 px crop of the real face in 1face.png, cut as extract cuts it."""
    image = cv2.imread(str(face_images_dir / "1face.png"))[..., ::-1].copy()
    faces = create_detector(weights=weights_dir)(image[None])[0]
    assert len(faces.boxes) == 1
    return crop_face(image, faces.boxes[0], 224, CROP_MARGIN)


def test_the_blend_changes_the_face_and_leaves_the_crop_around_it(crop):
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(20):
        params = draw_blend(rng)
        out = self_blend(crop[None], params, CROP_MARGIN)[0]
        diff = np.abs(out.astype(int) - crop.astype(int))
        assert out.dtype == np.uint8 and out.shape == crop.shape
        for corner in (diff[:12, :12], diff[:12, -12:], diff[-12:, :12], diff[-12:, -12:]):
            assert corner.max() <= 1  # outside the face box: the source as it was
        changed += diff[92:132, 92:132].mean() > 2  # the face's centre: the altered copy shows
    assert changed >= 15


def test_one_draw_blends_every_frame_of_a_clip_alike(crop):
    params = draw_blend(np.random.default_rng(3))
    clip = self_blend(np.stack([crop] * 3), params, CROP_MARGIN)
    assert np.array_equal(clip[0], clip[2]) and np.array_equal(clip[0], self_blend(crop[None], params, CROP_MARGIN)[0])


def test_blending_leaves_the_other_augmentations_draws_as_they_were():
    for seed in range(10):
        plain = ClipAugment(224).draw(np.random.default_rng(seed))
        blended = ClipAugment(224, p_blend=1.0).draw(np.random.default_rng(seed))
        assert "blend" in blended and "blend" not in plain
        assert blended.keys() - {"blend"} == plain.keys()
        assert all(np.all(np.asarray(blended[k]) == np.asarray(plain[k])) for k in plain)
