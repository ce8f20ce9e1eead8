"""Folder datasets. Every layout yields the same batch schema: {'a', 'b', 'a_path', 'b_path'}.

Indexing is by a key (i, j, seed) from StepBatchSampler rather than a plain int: i picks the A
image, j the B image (unpaired data) and seed fixes the random crop/flip. The data order and the
augmentation are therefore a pure function of (run seed, step), which is what lets a resumed run
continue exactly where the interrupted one stopped, with or without worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.utils.data import Dataset, Sampler

from img2img.config import DataConfig
from img2img.data.io import (UnreadableImage, files_by_stem, image_size, list_images, list_usable_images, load_image, to_mode,
                             usable_images, warn, warn_unreadable)
from img2img.data.transforms import PairTransform
from img2img.errors import UserError
from img2img.rng import cpu_rng_seeded

Key = tuple[int, int, int]


@dataclass
class CacheGroup:
    """Images a dataset decodes together for the decoded-image cache (data/cache.py).

    names: the batch entries one decode fills ('a', 'b' for a pair, 'a' or 'b' alone otherwise);
    count: how many items; key_part: 0 if the key's i picks the item, 1 if its j does;
    decode(index) -> one PIL image per name; path(index) -> the file, for warnings;
    size(index) -> (width, height) of the decoded image(s), from the file's header.
    Groups are listed in the order the streaming path draws their augmentation.
    """

    names: tuple[str, ...]
    count: int
    key_part: int
    decode: Callable[[int], tuple]
    path: Callable[[int], Path]
    size: Callable[[int], tuple[int, int]] = None

    def __post_init__(self):
        if self.size is None:
            self.size = lambda index: image_size(self.path(index))


class StepBatchSampler(Sampler):
    """Endless batches of keys; batch number s is the same whichever step the iteration starts at.

    Each epoch is a fresh permutation (incomplete last batches are dropped). For unpaired data an
    epoch is max(|A|, |B|) samples, as in the reference's unaligned dataset: A image = position %
    |A| (a smaller A folder is revisited within the epoch) and the B partner of each position is drawn
    independently from the B folder.
    """

    def __init__(self, n_a: int, batch_size: int, seed: int, start_step: int = 0, n_b: int = 0,
                 rank: int = 0, world: int = 1):
        """Under data parallelism a step's global batch is batch_size * world keys; this rank yields its slice."""
        if n_a < batch_size * world:
            raise UserError(f"batch size {batch_size}{f' x {world} processes' if world > 1 else ''} is larger than the training folder ({n_a} images)")
        self.n_a, self.n_b, self.batch_size, self.seed, self.start_step = n_a, n_b, batch_size, seed, start_step
        self.rank, self.world = rank, world
        self.epoch_length = max(n_a, n_b)
        self.steps_per_epoch = self.epoch_length // (batch_size * world)

    def _epoch_order(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.epoch_length, generator=g) % self.n_a
        partners = torch.randint(self.n_b, (self.epoch_length,), generator=g) if self.n_b else perm
        return perm, partners

    def __iter__(self) -> Iterator[list[Key]]:
        step, cached_epoch, perm, partners = self.start_step, -1, None, None
        while True:
            epoch, k = divmod(step, self.steps_per_epoch)
            if epoch != cached_epoch:
                perm, partners = self._epoch_order(epoch)
                cached_epoch = epoch
            global_batch = self.batch_size * self.world
            first = k * global_batch + self.rank * self.batch_size
            # Augmentation seed: unique per (step, slot in the global batch), so no two samples share a crop/flip draw.
            yield [(int(perm[first + n]), int(partners[first + n]),
                    self.seed * 7_919 + step * global_batch + self.rank * self.batch_size + n)
                   for n in range(self.batch_size)]
            step += 1


class _SeededDataset(Dataset):
    """Base for the folder datasets: augmentation randomness comes from the key's seed only."""

    n_b = 0  # unpaired datasets draw B partners independently
    image_channels: dict[str, int]  # channels of the images under each batch entry ('a', 'b')

    def __len__(self) -> int:
        return len(self.a_files)

    def load(self, i: int, j: int) -> dict:
        raise NotImplementedError

    def cache_groups(self) -> list[CacheGroup]:
        """How the decoded-image cache decodes this dataset (see CacheGroup)."""
        raise NotImplementedError

    def meta(self, i: int, j: int) -> dict:
        """The non-image entries of item (i, j): paths, labels."""
        raise NotImplementedError

    def __getitem__(self, key: Key | int) -> dict:
        """Load by key; a file that stopped decoding since the scan is replaced by the next one (deterministically)."""
        i, j, seed = key if isinstance(key, tuple) else (key, key, key)
        warned = self.__dict__.setdefault("_warned", set())  # per process: each bad file is named once
        for attempt in range(len(self)):
            with cpu_rng_seeded(seed):
                try:
                    return self.load((i + attempt) % len(self), (j + attempt) % max(self.n_b, 1) if self.n_b else (i + attempt) % len(self))
                except UnreadableImage as exc:
                    path, _, reason = str(exc).partition(": ")
                    if path not in warned:
                        warned.add(path)
                        warn_unreadable(path, f"{reason or 'unreadable'} (found during training; using the next image)")
        raise UserError("none of the training images can be read any more")

    def preview_keys(self, count: int) -> list[Key]:
        """Fixed keys for the sample grids: the first images, a fixed augmentation."""
        count = min(count, len(self))
        return [(i, i % self.n_b if self.n_b else i, 12345 + i) for i in range(count)]

    def training_shapes(self) -> dict[str, set[tuple[int, int]]]:
        """{batch entry: the (height, width) its training tensors take}; one each unless the preprocess keeps whole
        images of different shapes (scale_width, none). Read from the files' headers."""
        t = self.transform
        shapes: dict[str, set] = {}
        for g in self.cache_groups():
            if t.crops:
                found = {(t.crop_h, t.crop_w)}
            else:
                found = {t.output_hw(*g.size(k)[::-1]) for k in range(g.count)}
            for name in g.names:
                shapes[name] = found
        return shapes

    def check_shapes(self, batch_size: int, min_side: int = 1) -> None:
        """Clear errors where whole images (scale_width, none) of different shapes would have to share a batch, or
        one would be smaller than the nets can take (min_side)."""
        if self.transform.crops:
            return
        for name, shapes in self.training_shapes().items():
            small = [(h, w) for h, w in shapes if min(h, w) < min_side]
            if small:
                h, w = small[0]
                raise UserError(f"--preprocess {self.transform.mode} keeps images whole, and some {name.upper()} images come out "
                                f"{w}x{h}, under the {min_side} px the discriminator needs: use a mode that resizes or crops")
            if batch_size > 1 and len(shapes) > 1:
                listed = ", ".join(f"{w}x{h}" for h, w in sorted(shapes)[:4]) + (", ..." if len(shapes) > 4 else "")
                raise UserError(f"--preprocess {self.transform.mode} keeps each image whole, and the {name.upper()} images come out in "
                                f"{len(shapes)} shapes ({listed}), which cannot share a batch: use --batch-size 1, or a mode "
                                f"that crops (scale_width_and_crop, crop)")


class PairedABDataset(_SeededDataset):
    """One folder of side-by-side images: the left half is A, the right half is B."""

    def __init__(self, folder: str | Path, cfg: DataConfig):
        files = list_usable_images(folder, "paired data folder")
        narrow = [p for p in files if _too_narrow(p)]
        for p in narrow:
            warn_unreadable(p, "too narrow to split into A|B halves (under 2 pixels wide)")
        self.a_files = [p for p in files if p not in narrow]
        if not self.a_files:
            raise UserError(f"paired data folder {folder}: none of its images can be split into A|B halves")
        warn_if_not_pairs(folder, self.a_files)
        self.transform = PairTransform(cfg)
        self.image_channels = {"a": cfg.channels_of("a"), "b": cfg.channels_of("b")}

    def _halves(self, i: int):
        path = self.a_files[i]
        img = load_image(path, max(self.image_channels.values()))
        w, h = img.size
        half = w // 2
        if half < 1:  # the file changed since the scan
            raise UnreadableImage(f"{path}: too narrow to split into A|B halves ({w} pixels wide)")
        a, b = img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))
        return to_mode(a, self.image_channels["a"]), to_mode(b, self.image_channels["b"])

    def load(self, i: int, j: int) -> dict:
        a, b = self.transform.pair(*self._halves(i))
        return {"a": a, "b": b, **self.meta(i, j)}

    def cache_groups(self) -> list[CacheGroup]:
        return [CacheGroup(("a", "b"), len(self.a_files), 0, self._halves, self.a_files.__getitem__, self._half_size)]

    def _half_size(self, i: int) -> tuple[int, int]:
        w, h = image_size(self.a_files[i])
        return w // 2, h

    def meta(self, i: int, j: int) -> dict:
        return {"a_path": str(self.a_files[i]), "b_path": str(self.a_files[i])}


class PairedFoldersDataset(_SeededDataset):
    """Two folders whose files are paired by stem (A/0001.png with B/0001.jpg)."""

    def __init__(self, a_dir: str | Path, b_dir: str | Path, cfg: DataConfig):
        a_files = files_by_stem(list_images(a_dir, "--a folder"), f"--a folder {a_dir}")
        b_files = files_by_stem(list_images(b_dir, "--b folder"), f"--b folder {b_dir}")
        only_a, only_b = sorted(a_files.keys() - b_files.keys()), sorted(b_files.keys() - a_files.keys())
        if only_a or only_b:
            parts = []
            if only_a:
                parts.append(f"{len(only_a)} in {a_dir} without a partner in {b_dir} ({', '.join(only_a[:5])}{', ...' if len(only_a) > 5 else ''})")
            if only_b:
                parts.append(f"{len(only_b)} in {b_dir} without a partner in {a_dir} ({', '.join(only_b[:5])}{', ...' if len(only_b) > 5 else ''})")
            raise UserError("paired folders must hold the same file names (stems): " + "; ".join(parts))
        good_a, _ = usable_images([a_files[s] for s in sorted(a_files)], f"--a folder {a_dir}")
        good_b, _ = usable_images([b_files[s] for s in sorted(b_files)], f"--b folder {b_dir}")
        stems = sorted({p.stem for p in good_a} & {p.stem for p in good_b})
        if not stems:
            raise UserError(f"no readable pairs in {a_dir} and {b_dir}")
        for stem in stems:
            size_a, size_b = image_size(a_files[stem]), image_size(b_files[stem])
            if size_a != size_b:
                raise UserError(f"pair {stem!r} differs in size: {a_files[stem]} is {size_a[0]}x{size_a[1]}, {b_files[stem]} is {size_b[0]}x{size_b[1]}")
        self.a_files = [a_files[s] for s in stems]
        self.b_files = [b_files[s] for s in stems]
        self.transform = PairTransform(cfg)
        self.image_channels = {"a": cfg.channels_of("a"), "b": cfg.channels_of("b")}

    def _pair(self, i: int):
        return load_image(self.a_files[i], self.image_channels["a"]), load_image(self.b_files[i], self.image_channels["b"])

    def load(self, i: int, j: int) -> dict:
        a, b = self.transform.pair(*self._pair(i))
        return {"a": a, "b": b, **self.meta(i, j)}

    def cache_groups(self) -> list[CacheGroup]:
        return [CacheGroup(("a", "b"), len(self.a_files), 0, self._pair, self.a_files.__getitem__)]

    def meta(self, i: int, j: int) -> dict:
        return {"a_path": str(self.a_files[i]), "b_path": str(self.b_files[i])}


class UnpairedDataset(_SeededDataset):
    """Two folders of unrelated images; the sizes of the folders may differ."""

    def __init__(self, a_dir: str | Path, b_dir: str | Path, cfg: DataConfig):
        self.a_files = list_usable_images(a_dir, "--a folder")
        self.b_files = list_usable_images(b_dir, "--b folder")
        self.n_b = len(self.b_files)
        self.transform = PairTransform(cfg)
        self.image_channels = {"a": cfg.channels_of("a"), "b": cfg.channels_of("b")}

    def _a(self, i: int):
        return load_image(self.a_files[i], self.image_channels["a"])

    def _b(self, j: int):
        return load_image(self.b_files[j], self.image_channels["b"])

    def load(self, i: int, j: int) -> dict:
        a = self.transform.single(self._a(i))
        b = self.transform.single(self._b(j))
        return {"a": a, "b": b, **self.meta(i, j)}

    def cache_groups(self) -> list[CacheGroup]:
        return [CacheGroup(("a",), len(self.a_files), 0, lambda i: (self._a(i),), self.a_files.__getitem__),
                CacheGroup(("b",), len(self.b_files), 1, lambda j: (self._b(j),), self.b_files.__getitem__)]

    def meta(self, i: int, j: int) -> dict:
        return {"a_path": str(self.a_files[i]), "b_path": str(self.b_files[j])}


# An A|B image is two pictures side by side, about 2:1 (facades, maps: 512x256). Width/height outside
# this range is far from that: a square or portrait photo (under 1.5) or a strip wider than two 1:1
# halves allow for (over 4: even two 16:9 frames side by side are 3.6:1).
PAIR_ASPECT_RANGE = (1.5, 4.0)
PAIR_CHECK_SAMPLE = 256  # header reads are cheap, but a 100k-image folder needs only a sample


def warn_if_not_pairs(folder: str | Path, files: list[Path]) -> bool:
    """One warning when most images of an A|B folder do not have the shape of two images side by side.

    pix2pix would still train, on the left and right halves of each photo, which is almost never
    what was meant: two folders of matching names (--a/--b) is the usual intent. Returns True if it warned.
    """
    step = max(1, len(files) // PAIR_CHECK_SAMPLE)
    ratios = []
    for path in files[::step]:
        try:
            w, h = image_size(path)
        except UnreadableImage:
            continue
        ratios.append(w / max(h, 1))
    lo, hi = PAIR_ASPECT_RANGE
    odd = [r for r in ratios if not lo <= r <= hi]
    if not ratios or len(odd) * 2 <= len(ratios):
        return False
    typical = sorted(odd)[len(odd) // 2]
    warn(f"{len(odd)} of {len(ratios)} images{' checked' if step > 1 else ''} in {folder} are far from the 2:1 shape of "
         f"A|B side-by-side pairs (typically {typical:.2f}:1, width:height): pix2pix will train on their left and right "
         f"halves as A and B. For two folders of matching file names use --a DIR --b DIR")
    return True


def _too_narrow(path: Path) -> bool:
    try:
        return image_size(path)[0] < 2
    except UnreadableImage:
        return True


def build_dataset(kind: str, cfg: DataConfig, method: str, stride: int = 4) -> _SeededDataset:
    """The dataset a method asks for ('paired', 'unpaired' or 'domains'), from the data flags in cfg.
    stride: the generator's; the preprocess modes that keep whole images round their sides to it."""
    dataset = _build_dataset(kind, cfg, method)
    dataset.transform.stride = stride
    return dataset


def _build_dataset(kind: str, cfg: DataConfig, method: str) -> _SeededDataset:
    if kind == "paired":
        if cfg.data and (cfg.a or cfg.b):
            raise UserError(f"{method}: give either --data (side-by-side images) or --a and --b, not both")
        if cfg.data:
            return PairedABDataset(cfg.data, cfg)
        if cfg.a and cfg.b:
            return PairedFoldersDataset(cfg.a, cfg.b, cfg)
        raise UserError(f"{method} needs --data DIR (A|B side-by-side images) or --a DIR --b DIR (pairs matched by file stem)")
    if kind == "unpaired":
        if cfg.data:
            raise UserError(f"{method} trains on unpaired folders: use --a DIR --b DIR instead of --data")
        if not (cfg.a and cfg.b):
            raise UserError(f"{method} needs --a DIR and --b DIR (one folder of images per domain)")
        return UnpairedDataset(cfg.a, cfg.b, cfg)
    if kind == "domains":  # labelled domains (StarGAN): sub-folders or an attribute CSV
        from img2img.data.domains import build_domain_dataset

        return build_domain_dataset(cfg, method)
    raise UserError(f"unknown dataset kind {kind!r}")
