"""The training data path that keeps an accelerator fed: decode each image once, augment on the device.

A folder dataset is decoded, converted and resized once per image into one uint8 tensor per batch
entry, (N, C, load_h, load_w) (or one tensor per image where the preprocess keeps each image's
shape), in host memory (pinned on CUDA, so copies are asynchronous). Each step
then only gathers its images, copies them to the device as uint8 (a quarter of the bytes of float)
and crops, flips and normalises there (PairTransform.finish). The random crop/flip of a key comes
from PairTransform.draw with a generator seeded by the key's seed, in the streaming path's draw
order, so a batch is bit-identical to the one the DataLoader path builds for the same key: the
keyed (seed, step) order, pairs cropped alike and exact resume are unchanged.

Arithmetic (why this suffices): CycleGAN at 256 px with load 286 moves 2 x 3 x 286^2 = 0.49 MB of
uint8 per pair; at the 150 pairs/s aimed for on an H100 that is 74 MB/s over a PCIe link of over
20 GB/s, and the host work per pair is two memcpy's of 245 kB. The streaming path instead decodes
two JPEGs and resizes them per pair (about 8 ms of CPU each at 256 px), 2.4 CPU-seconds per second
at 150 pairs/s: it needs several worker processes to keep up, the cache needs none. Memory: the
horse2zebra training set (2,401 images) at load 286 is 589 MB.

Images are decoded lazily (the first time a step needs them) by the training thread, and, when the
step runs on an accelerator, ahead of time by a background thread that walks the sampler's future
order; both write the same bytes, so the race between them is harmless. On a CPU the first epoch
thus costs what the streaming path costs (the same decode and resize, once), and later ones less. A file that cannot be decoded any more is named once and
replaced by the next good item of its folder, deterministically.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch

from img2img.data.datasets import StepBatchSampler, _SeededDataset
from img2img.data.io import warn_unreadable
from img2img.errors import UserError

_UNKNOWN, _READY, _BAD = 0, 1, 2


def cache_bytes(dataset: _SeededDataset) -> int:
    """Bytes the decoded cache of this dataset takes (where resized sizes vary, from each file's header)."""
    t = dataset.transform
    total = 0
    for g in dataset.cache_groups():
        channels = sum(dataset.image_channels[name] for name in g.names)
        if t.uniform:
            total += g.count * channels * t.load_h * t.load_w
        else:
            for index in range(g.count):
                h, w = t.resized_hw(*stored_source_hw(g, index, t))
                total += channels * h * w
    return total


def stored_source_hw(group, index: int, transform) -> tuple[int, int]:
    """(height, width) of an item's image after the optional centre crop, from its file's header."""
    w, h = group.size(index)
    if transform.center_side:
        h = w = min(transform.center_side, h, w)
    return h, w


def memory_budget_bytes() -> int:
    """How much host memory the cache may take: half of what is available now."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh}
        available = fields.get("MemAvailable", fields.get("MemFree", 0))
    except (OSError, ValueError, IndexError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return 0
    return available // 2


def cache_fits(dataset: _SeededDataset, budget: int | None = None) -> bool:
    try:
        needed = cache_bytes(dataset)
    except NotImplementedError:  # a dataset without a cache layout streams
        return False
    return needed <= (memory_budget_bytes() if budget is None else budget)


class DecodedImages:
    """The decoded, resized uint8 images of a dataset, filled on demand.

    Where every resized image has one size (resize_and_crop) they fill one preallocated (N, C, H, W)
    tensor per batch entry; where sizes differ (the other preprocess modes) each image is kept as its own
    (C, H, W) tensor, so no image is padded or squeezed to share a shape with the others.
    """

    def __init__(self, dataset: _SeededDataset, pin: bool = False):
        self.dataset, self.transform = dataset, dataset.transform
        self.groups = dataset.cache_groups()
        self.pin = pin
        t = self.transform
        if t.uniform:
            self.store = {name: torch.empty((g.count, dataset.image_channels[name], t.load_h, t.load_w), dtype=torch.uint8, pin_memory=pin)
                          for g in self.groups for name in g.names}
        else:
            self.store = {name: [None] * g.count for g in self.groups for name in g.names}
        self.state = [bytearray(g.count) for g in self.groups]
        self._lock = threading.Lock()

    def _fill(self, group: int, index: int) -> None:
        g = self.groups[group]
        try:
            images = [self.transform.resized(img) for img in g.decode(index)]
            for name, im in zip(g.names, images):
                want = self.store[name].shape[1:] if self.transform.uniform else (self.dataset.image_channels[name], *images[0].shape[1:])
                if im.shape != want:
                    raise ValueError(f"decoded to an unexpected shape {tuple(im.shape)}")
        except Exception as exc:  # noqa: BLE001 - one bad file must not end a long run; it is named once below
            reason = str(exc).partition(": ")[2] if str(exc).startswith(str(g.path(index))) else str(exc)
            with self._lock:
                if self.state[group][index] == _UNKNOWN:
                    self.state[group][index] = _BAD
                    warn_unreadable(g.path(index), f"{reason or type(exc).__name__} (found during training; using the next image)")
            return
        for name, im in zip(g.names, images):
            if self.transform.uniform:
                self.store[name][index].copy_(im)
            else:
                self.store[name][index] = im.pin_memory() if self.pin else im.clone()
        with self._lock:
            self.state[group][index] = _READY

    def size(self, name: str, index: int) -> tuple[int, int] | None:
        """(height, width) of a decoded item; None where all have the transform's load size."""
        return None if self.transform.uniform else tuple(self.store[name][index].shape[-2:])

    def gather(self, name: str, index: list[int], device: torch.device) -> torch.Tensor | list[torch.Tensor]:
        """The decoded items on device: one (N, C, H, W) stack, or a list of (C, H, W) where sizes vary."""
        if self.transform.uniform:
            stack = self.store[name].index_select(0, torch.tensor(index))
            return stack.pin_memory().to(device, non_blocking=True) if device.type != "cpu" else stack
        return [self.store[name][k].to(device, non_blocking=True) for k in index]

    def resolve(self, group: int, index: int) -> int:
        """The item to use for index: itself once decoded, or the next good one if it cannot be read."""
        count = self.groups[group].count
        for attempt in range(count):
            k = (index + attempt) % count
            if self.state[group][k] == _UNKNOWN:
                self._fill(group, k)
            if self.state[group][k] == _READY:
                return k
        raise UserError("none of the training images can be read any more")

    def complete(self) -> bool:
        return all(_UNKNOWN not in s for s in self.state)


class CachedBatches:
    """Endless training batches from DecodedImages, built on `device`, in StepBatchSampler order."""

    def __init__(self, dataset: _SeededDataset, sampler: StepBatchSampler, device: torch.device,
                 channels_last: bool = False, prefetch: bool = True):
        self.device, self.channels_last = device, channels_last
        self.images = DecodedImages(dataset, pin=device.type == "cuda")
        self.sampler, self.dataset = sampler, dataset
        self._stop = threading.Event()
        self._warmer = None
        if prefetch:
            self._warmer = threading.Thread(target=self._warm, name="img2img-decode", daemon=True)
            self._warmer.start()

    def _warm(self) -> None:
        """Decode ahead in the order the run will need the images, with a few threads (decoders release the GIL)."""
        ahead = StepBatchSampler(self.sampler.n_a, self.sampler.batch_size, self.sampler.seed, self.sampler.start_step,
                                 self.sampler.n_b, rank=self.sampler.rank, world=self.sampler.world)
        threads = max(1, min(8, (os.cpu_count() or 2) - 1))
        with ThreadPoolExecutor(threads, thread_name_prefix="img2img-decode") as pool:
            for keys in ahead:
                if self._stop.is_set() or self.images.complete():
                    return
                todo = [(gi, key[g.key_part]) for key in keys for gi, g in enumerate(self.images.groups)
                        if self.images.state[gi][key[g.key_part]] == _UNKNOWN]
                list(pool.map(lambda item: self.images._fill(*item), todo))

    def close(self) -> None:
        self._stop.set()

    def batch(self, keys: list) -> dict:
        out: dict = {}
        resolved = []  # per key: the item each group uses, and the (i, j) the metadata follows
        params = {gi: [] for gi in range(len(self.images.groups))}
        for i, j, seed in keys:
            gen = torch.Generator().manual_seed(seed)  # the streaming path seeds the global RNG with it, then draws
            used, ij = [], [i, j]
            for gi, g in enumerate(self.images.groups):
                k = self.images.resolve(gi, ij[g.key_part])
                used.append(k)
                ij[g.key_part] = k
                params[gi].append(self.transform.draw(gen, self.images.size(g.names[0], k)))
            resolved.append((used, ij))
        for gi, g in enumerate(self.images.groups):
            index = [used[gi] for used, _ in resolved]
            for name in g.names:
                images = self.transform.finish(self.images.gather(name, index, self.device), params[gi])
                out[name] = images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
        metas = [self.dataset.meta(*ij) for _, ij in resolved]
        for key in metas[0]:
            values = [m[key] for m in metas]
            out[key] = torch.stack(values).to(self.device, non_blocking=True) if torch.is_tensor(values[0]) else values
        return out

    @property
    def transform(self):
        return self.images.transform

    def __iter__(self):
        for keys in self.sampler:
            yield self.batch(keys)
