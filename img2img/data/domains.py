"""Labelled datasets for multi-domain methods (StarGAN): domain sub-folders or an attribute CSV.

Two layouts, one batch schema {'a': image, 'label': float vector, 'a_path': str}:
- ``--data DIR`` with one sub-folder per domain (DIR/cat/*.jpg, DIR/dog/*.jpg): single-label; the
  label is the one-hot vector of the folder, domains are the sub-folder names in sorted order.
- ``--images DIR --labels CSV [--attrs A,B,...]``: multi-label; the CSV has a file column (file,
  filename, image, image_id or path; relative to DIR) and one column per attribute holding 0/1 or
  -1/1. ``--attrs`` picks and orders the attribute columns (default: every other column).
Keys (i, j, seed) come from StepBatchSampler as for the other layouts; j is unused here.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from img2img.config import DataConfig
from img2img.data.datasets import CacheGroup, _SeededDataset
from img2img.data.io import list_usable_images, load_image, usable_images
from img2img.data.transforms import PairTransform
from img2img.errors import UserError

FILE_COLUMNS = ("file", "filename", "image", "image_id", "path")


@dataclass
class DomainSpec:
    names: list[str]  # domain names (single-label) or attribute names (multi-label), in label order
    multi_label: bool


def _subfolders(folder: Path) -> list[Path]:
    if not folder.exists():
        raise UserError(f"--data folder not found: {folder}")
    if not folder.is_dir():
        raise UserError(f"--data is not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _parse_attrs(text: str) -> list[str]:
    attrs = [a.strip() for a in text.split(",")]
    if not all(attrs):
        raise UserError(f"--attrs {text!r}: give attribute names separated by commas, e.g. Black_Hair,Male")
    dupes = sorted({a for a in attrs if attrs.count(a) > 1})
    if dupes:
        raise UserError(f"--attrs names {', '.join(dupes)} more than once")
    return attrs


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(row number, {column: value})]); blank lines skipped, trailing empty cells (a trailing comma) ignored."""
    if not path.is_file():
        raise UserError(f"--labels file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    header = [h.strip() for h in lines[0]] if lines else []
    while header and not header[-1]:
        header.pop()
    if not header:
        raise UserError(f"{path} is empty: expected a header row with a file column and attribute columns")
    if "" in header:
        raise UserError(f"{path}: column {header.index('') + 1} of the header row has no name")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UserError(f"{path}: the header names the column {dupes[0]!r} more than once")
    rows = []
    for n, line in enumerate(lines[1:], start=2):  # row 1 is the header
        cells = [c.strip() for c in line]
        if not any(cells):
            continue
        if any(cells[len(header):]):
            raise UserError(f"{path}, row {n}: {len(cells)} values, but the header has {len(header)} columns")
        rows.append((n, dict(zip(header, cells + [""] * (len(header) - len(cells))))))
    return header, rows


def _file_column(header: list[str], path: Path) -> str:
    for name in FILE_COLUMNS:
        if name in header:
            return name
    raise UserError(f"{path} has no file column: expected one of {', '.join(FILE_COLUMNS)}; its columns are {', '.join(header)}")


def _csv_attrs(cfg: DataConfig, header: list[str], path: Path) -> list[str]:
    file_col = _file_column(header, path)
    available = [h for h in header if h != file_col]
    attrs = _parse_attrs(cfg.attrs) if cfg.attrs else available
    unknown = [a for a in attrs if a not in available]
    if unknown:
        raise UserError(f"{path} has no column {', '.join(unknown)}; attribute columns there: {', '.join(available) or 'none'}")
    if not attrs:
        raise UserError(f"{path} has no attribute columns besides {file_col!r}")
    return attrs


def domain_spec(cfg: DataConfig, method: str = "stargan") -> DomainSpec:
    """The domain names and label kind the data flags describe (cheap: folder names or the CSV header)."""
    if cfg.a or cfg.b:
        raise UserError(f"{method} trains on labelled domains: use --data DIR (one sub-folder per domain) "
                        f"or --images DIR --labels CSV, not --a/--b")
    if cfg.data and (cfg.images or cfg.labels):
        raise UserError(f"{method}: give either --data DIR (domain sub-folders) or --images DIR --labels CSV, not both")
    if cfg.data:
        if cfg.attrs:
            raise UserError("--attrs picks columns of a --labels CSV; with --data the domains are the sub-folder names")
        folder = Path(cfg.data)
        subs = _subfolders(folder)
        if not subs:
            raise UserError(f"--data {folder} must hold one sub-folder per domain (e.g. {folder}/cat/, {folder}/dog/), "
                            f"the folder name being the domain name; it has none")
        if len(subs) < 2:
            raise UserError(f"--data {folder} holds one domain folder ({subs[0].name}); translation needs at least two")
        return DomainSpec([s.name for s in subs], multi_label=False)
    if cfg.images or cfg.labels:
        if not (cfg.images and cfg.labels):
            raise UserError("--images DIR and --labels CSV go together (images plus their attribute table)")
        header, _ = _read_csv(Path(cfg.labels))
        return DomainSpec(_csv_attrs(cfg, header, Path(cfg.labels)), multi_label=True)
    raise UserError(f"{method} needs --data DIR (one sub-folder of images per domain) "
                    f"or --images DIR --labels CSV [--attrs A,B,...] (multi-label attributes)")


class _LabelledDataset(_SeededDataset):
    domains: list[str]
    multi_label: bool
    labels: torch.Tensor  # (N, n_domains) float

    def load(self, i: int, j: int) -> dict:
        img = self.transform.single(load_image(self.a_files[i], self.image_channels["a"]))
        return {"a": img, **self.meta(i, j)}

    def cache_groups(self) -> list[CacheGroup]:
        return [CacheGroup(("a",), len(self.a_files), 0, lambda i: (load_image(self.a_files[i], self.image_channels["a"]),), self.a_files.__getitem__)]

    def meta(self, i: int, j: int) -> dict:
        return {"label": self.labels[i].clone(), "a_path": str(self.a_files[i])}


class DomainFolderDataset(_LabelledDataset):
    """DIR/<domain>/<images>: single-label, one-hot labels in sorted folder order."""

    multi_label = False

    def __init__(self, folder: str | Path, cfg: DataConfig):
        spec = domain_spec(cfg)
        self.domains = spec.names
        files, ids = [], []
        for k, name in enumerate(self.domains):
            found = list_usable_images(Path(folder) / name, f"domain folder ({name})")
            files += found
            ids += [k] * len(found)
        self.a_files = files
        self.domain_ids = torch.tensor(ids)
        self.labels = torch.nn.functional.one_hot(self.domain_ids, len(self.domains)).float()
        self.transform = PairTransform(cfg)
        self.image_channels = {"a": cfg.channels_of("a")}

    def preview_keys(self, count: int):
        """Round-robin over the domains, so the sample grid shows inputs from each."""
        by_domain = [torch.nonzero(self.domain_ids == k).flatten().tolist() for k in range(len(self.domains))]
        picks: list[int] = []
        rank = 0
        while len(picks) < min(count, len(self)):
            for members in by_domain:
                if rank < len(members) and len(picks) < count:
                    picks.append(members[rank])
            rank += 1
        return [(i, i, 12345 + i) for i in picks]


def _binary(value: str, path: Path, row: int, attr: str) -> float:
    try:
        v = float(value)
    except ValueError:
        v = None
    if v not in (-1.0, 0.0, 1.0):
        raise UserError(f"{path}, row {row}, column {attr}: {value!r} is not an attribute value (use 0/1 or -1/1)")
    return 1.0 if v == 1.0 else 0.0


class AttributeDataset(_LabelledDataset):
    """Images listed in a CSV with binary attribute columns: multi-label."""

    multi_label = True

    def __init__(self, images: str | Path, labels_csv: str | Path, cfg: DataConfig):
        images, path = Path(images), Path(labels_csv)
        if not images.is_dir():
            raise UserError(f"--images folder not found: {images}")
        header, rows = _read_csv(path)
        file_col = _file_column(header, path)
        self.domains = _csv_attrs(cfg, header, path)
        if not rows:
            raise UserError(f"{path} lists no images (only a header row)")
        files, labels, missing = [], [], []
        seen: dict[Path, tuple[int, list[float]]] = {}  # a file listed twice: the same labels, or refused
        for n, row in rows:
            name = row.get(file_col, "")
            if not name:
                raise UserError(f"{path}, row {n}: the {file_col!r} column is empty")
            f = images / name
            if not f.is_file():
                missing.append(name)
                continue
            label = [_binary(row.get(a, ""), path, n, a) for a in self.domains]
            key = f.resolve()
            if key in seen:
                first, earlier = seen[key]
                if earlier != label:
                    raise UserError(f"{path} lists {name} twice with different labels (rows {first} and {n}); keep one row")
                continue
            seen[key] = (n, label)
            files.append(f)
            labels.append(label)
        if missing:
            raise UserError(f"{len(missing)} file(s) listed in {path} are not in {images}: "
                            f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}")
        good, _ = usable_images(files, f"--images {images}")
        if not good:
            raise UserError(f"none of the images listed in {path} can be read")
        keep = {p: k for k, p in enumerate(files)}
        self.a_files = good
        self.labels = torch.tensor([labels[keep[p]] for p in good], dtype=torch.float32)
        self.transform = PairTransform(cfg)
        self.image_channels = {"a": cfg.channels_of("a")}


def build_domain_dataset(cfg: DataConfig, method: str = "stargan") -> _LabelledDataset:
    spec = domain_spec(cfg, method)
    if spec.multi_label:
        return AttributeDataset(cfg.images, cfg.labels, cfg)
    return DomainFolderDataset(cfg.data, cfg)
