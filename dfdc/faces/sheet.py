"""Contact sheets: a grid of face crops a person can check at a glance."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def contact_sheet(rows: list[tuple[str, np.ndarray]], path: Path, columns: int = 16,
                  thumb: int = 96) -> Path:
    """Write a PNG with one labelled block per row: (label, (n, h, w, 3) RGB crops)."""
    blocks = []
    for label, crops in rows:
        tiles = [cv2.resize(c, (thumb, thumb), interpolation=cv2.INTER_AREA) for c in crops]
        tiles += [np.zeros((thumb, thumb, 3), np.uint8)] * (-len(tiles) % columns or (0 if tiles else columns))
        grid = np.concatenate([np.concatenate(tiles[i:i + columns], 1)
                               for i in range(0, len(tiles), columns)], 0)
        header = np.full((22, grid.shape[1], 3), 255, np.uint8)
        cv2.putText(header, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        blocks.append(np.concatenate([header, grid], 0))
    width = max((b.shape[1] for b in blocks), default=thumb * columns)
    blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0))) for b in blocks]
    sheet = np.concatenate(blocks, 0) if blocks else np.full((22, width, 3), 255, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write the contact sheet")
    return path
