"""Hostile training data: label CSVs written by hand or by spreadsheets, and folders matched by file
name that hold two files of one name. Accepted when the meaning is clear, refused by name when not,
never silently dropped or guessed."""

from __future__ import annotations

import pytest

from conftest import TINY_FLAGS
from hostile import assert_refused, invoke, noise_image, snapshot

ATTR_FLAGS = ["--generator", "resnet_1", "--n-critic", "1", "--batch-size", "2", "--steps", "1", *TINY_FLAGS]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    for k in range(4):
        noise_image(folder / f"img{k}.png", 32, 32, seed=k)
    return folder


def _train_attrs(tmp_path, images, csv_text: str):
    labels = tmp_path / "labels.csv"
    labels.write_text(csv_text)
    before = snapshot(images, labels)
    result = invoke(["train", "stargan", "--images", images, "--labels", labels, "--out", tmp_path / "run", *ATTR_FLAGS])
    assert snapshot(images, labels) == before
    return result


GOOD_ROWS = "img0.png,1,0\nimg1.png,0,1\nimg2.png,1,1\nimg3.png,0,0\n"


@pytest.mark.parametrize("name,text", [
    ("trailing-comma-in-rows", "file,Red,Big\n" + GOOD_ROWS.replace("\n", ",\n")),
    ("trailing-comma-everywhere", "file,Red,Big,\n" + GOOD_ROWS.replace("\n", ",\n")),
    ("trailing-comma-in-header", "file,Red,Big,\n" + GOOD_ROWS),
    ("blank-lines", "file,Red,Big\n\n" + GOOD_ROWS.replace("img2", "\nimg2") + "\n\n"),
    ("windows-line-ends-and-bom", "\ufefffile,Red,Big\r\n" + GOOD_ROWS.replace("\n", "\r\n")),
    ("spaces-around-values", "file , Red , Big\n" + GOOD_ROWS.replace(",", " , ")),
    ("same-file-twice-same-labels", "file,Red,Big\n" + GOOD_ROWS + "img0.png,1,0\n"),
])
def test_label_csvs_with_a_clear_meaning_are_accepted(tmp_path, images, name, text):
    result = _train_attrs(tmp_path, images, text)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name,text,needles", [
    ("conflicting-duplicate", "file,Red,Big\n" + GOOD_ROWS + "img0.png,0,1\n", ("img0.png", "twice", "rows 2 and 6")),
    ("duplicate-via-dot-slash", "file,Red,Big\n" + GOOD_ROWS + "./img1.png,1,1\n", ("img1.png", "twice")),
    ("extra-value-in-a-row", "file,Red,Big\n" + GOOD_ROWS.replace("img1.png,0,1", "img1.png,0,1,1"), ("row 3", "4 values")),
    ("duplicate-column", "file,Red,Red\n" + GOOD_ROWS, ("'Red'", "more than once")),
    ("unnamed-middle-column", "file,,Big\n" + GOOD_ROWS, ("column 2",)),
    ("value-not-binary", "file,Red,Big\n" + GOOD_ROWS.replace("img2.png,1,1", "img2.png,yes,1"), ("row 4", "Red")),
    ("only-a-header", "file,Red,Big\n", ("only a header",)),
    ("empty-file", "", ("empty",)),
    ("no-file-column", "name,Red,Big\n" + GOOD_ROWS, ("no file column",)),
    ("missing-image", "file,Red,Big\n" + GOOD_ROWS + "ghost.png,1,1\n", ("ghost.png",)),
])
def test_ambiguous_or_broken_label_csvs_are_refused_by_name(tmp_path, images, name, text, needles):
    result = _train_attrs(tmp_path, images, text)
    assert_refused(result, *needles)
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize("side", ["a", "b"])
def test_two_files_of_one_name_in_paired_folders_are_refused_naming_both(tmp_path, side):
    a, b = tmp_path / "A", tmp_path / "B"
    for k in range(3):
        noise_image(a / f"p{k}.png", 32, 32, seed=k)
        noise_image(b / f"p{k}.png", 32, 32, seed=10 + k)
    noise_image((a if side == "a" else b) / "p1.jpg", 32, 32, seed=99)
    before = snapshot(a, b)
    result = invoke(["train", "pix2pix", "--a", a, "--b", b, "--steps", "1", "--out", tmp_path / "run", *TINY_FLAGS])
    assert_refused(result, "p1.png", "p1.jpg")
    assert snapshot(a, b) == before
    assert not (tmp_path / "run" / "model.pt").exists()
