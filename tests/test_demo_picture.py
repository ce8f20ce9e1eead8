"""The demo's comparison picture: titled columns, tiles big enough to look at."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from img2img.demo import save_titled_grid


def test_comparison_has_a_title_over_each_column_and_enlarged_tiles(tmp_path):
    images = torch.zeros(6, 3, 64, 64)  # mid-grey tiles: any dark pixel above them is title text
    save_titled_grid(images, ["input", "translation", "ground truth"], tmp_path / "c.png")
    img = np.asarray(Image.open(tmp_path / "c.png").convert("L"), dtype=int)
    assert img.shape[1] >= 3 * 160 and img.shape[0] >= 2 * 160
    band = img[:16]
    thirds = np.array_split(band, 3, axis=1)
    assert all((part < 100).sum() > 20 for part in thirds)  # text in every column's title
    assert abs(img[100, 100] - 128) <= 1  # the tiles themselves
