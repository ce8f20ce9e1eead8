"""Scoring translations: two folders against each other, or a model on test folders.

Every image the metrics see is 8-bit, as it would be on disk: translations are rounded to uint8
before scoring, so `eval MODEL` and `translate` + `eval --real --fake` give the same numbers.
- unpaired data: FID and KID between the translations and the real target-domain images;
- paired data (an A|B folder, or --a/--b folders whose file stems match): also L1, PSNR and SSIM of
  each translation against its ground truth (mean over images; [0, 1] pixel scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from img2img.data.io import files_by_stem, list_images, load_image, pil_to_tensor, save_image_atomic, tensor_to_pil
from img2img.errors import UserError
from img2img.metrics.distribution import fid, kid
from img2img.metrics.features import FeatureExtractor, features_of_tensors, folder_features, unit_to_uint8
from img2img.metrics.paired import l1_01, psnr_01, ssim_01

# (description, total) -> advance(n). The CLI passes rich progress bars; the library default does nothing.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


def distribution_scores(real: np.ndarray, fake: np.ndarray, kid_subsets: int = 100, kid_subset_size: int = 1000) -> dict:
    k = kid(real, fake, subsets=kid_subsets, subset_size=kid_subset_size)
    return {"fid": fid(real, fake), "kid": k.mean, "kid_std": k.std, "kid_subsets": k.subsets, "kid_subset_size": k.subset_size}


def score_folders(real: str | Path, fake: str | Path, extractor: FeatureExtractor, *, batch_size: int = 16,
                  kid_subsets: int = 100, kid_subset_size: int = 1000, progress: ProgressFactory = no_progress,
                  other_outputs: list[Path] = ()) -> dict:
    """FID and KID between the images of two folders; other_outputs (--json) may not be one of them."""
    real_files, fake_files = list_images(real, "--real folder"), list_images(fake, "--fake folder")
    check_not_inputs([Path(p) for p in other_outputs], real_files + fake_files, "input image")
    n_real, n_fake = len(real_files), len(fake_files)
    f_real = folder_features(extractor, real, batch_size, progress("features of --real", n_real))
    f_fake = folder_features(extractor, fake, batch_size, progress("features of --fake", n_fake))
    return {"real": str(real), "fake": str(fake), "real_images": n_real, "fake_images": n_fake,
            **distribution_scores(f_real, f_fake, kid_subsets, kid_subset_size), "features": extractor.name}


# ----- a model on test data

@dataclass
class Sample:
    """One test input and, for paired data, its ground truth; both loaded lazily as (C, H, W) in [-1, 1]."""

    name: str
    source: Callable[[], torch.Tensor]
    target: Callable[[], torch.Tensor] | None = None


@dataclass
class EvalPlan:
    samples: list[Sample]
    references: list[Callable[[], torch.Tensor]]  # real target-domain images for FID/KID, in [-1, 1]
    paired: bool
    description: str
    files: list[Path] = field(default_factory=list)  # every file the plan reads (no output may replace one)


def check_not_inputs(outputs: list[Path], inputs: list[Path], what: str = "test image") -> None:
    """Refuse before anything is written when an output would replace an input file."""
    sources = {p.resolve(): p for p in inputs}
    for out in outputs:
        if out.resolve() in sources:
            raise UserError(f"refusing to write {out}: it is the {what} {sources[out.resolve()]}; choose another folder or name")


def save_targets(plan: EvalPlan, save_dir: Path) -> list[Path]:
    """Where --save writes each translation (<name>.png); two inputs sharing a name are refused, not overwritten."""
    if save_dir.resolve() in {p.parent.resolve() for p in plan.files}:
        raise UserError(f"--save {save_dir} is a folder of test images; give a new or separate folder for the translations")
    targets: dict[Path, str] = {}
    for s in plan.samples:
        target = save_dir / f"{s.name}.png"
        if target in targets:
            raise UserError(f"two test inputs are named {s.name!r} (e.g. {s.name}.png and {s.name}.jpg) and would both be "
                            f"saved as {target}; rename one")
        targets[target] = s.name
    return list(targets)


def _half(path: Path, channels: int, right: bool) -> torch.Tensor:
    t = pil_to_tensor(load_image(path, channels))
    w = t.shape[-1] // 2
    return t[..., w : 2 * w] if right else t[..., :w]


def _image(path: Path, channels: int) -> torch.Tensor:
    return pil_to_tensor(load_image(path, channels))


def plan_eval(*, a: str | Path | None = None, b: str | Path | None = None, data: str | Path | None = None,
              direction: str = "a2b", channels: int | tuple[int, int] = 3, limit: int = 0, paired: bool = False) -> EvalPlan:
    """What to translate and what to compare with.

    --data DIR: A|B side-by-side images (always paired); the model's direction picks the input half.
    --a DIR --b DIR: the direction's source folder is translated and compared with the other one;
    paired=True matches the two by file stem (every file needs its partner). For a multi-domain
    model (a direction like "to:zebra"), --a holds the inputs and --b real images of the target domain.
    limit > 0 keeps the first `limit` inputs and references (sorted by name).
    channels: of inputs and references alike, or (input, output) channels of the model (grayscale to colour).
    """
    c_in, c_out = channels if isinstance(channels, tuple) else (channels, channels)
    if data is not None:
        if a is not None or b is not None:
            raise UserError("give either --data (A|B images) or --a and --b, not both")
        if direction not in ("a2b", "b2a"):
            raise UserError(f"--data holds A|B pairs, but the model translates {direction!r}; use --a and --b")
        files = list_images(data, "--data folder")[: limit or None]
        right_is_input = direction == "b2a"
        samples = [Sample(f.stem, lambda f=f: _half(f, c_in, right_is_input), lambda f=f: _half(f, c_out, not right_is_input))
                   for f in files]
        return EvalPlan(samples, [s.target for s in samples], True, f"{len(files)} A|B pairs in {data}", list(files))
    if a is None or b is None:
        raise UserError("give the test data: --a DIR --b DIR (two folders) or --data DIR (A|B images)")
    src, ref = (b, a) if direction == "b2a" else (a, b)
    src_files = list_images(src, "input folder")[: limit or None]
    ref_files = list_images(ref, "reference folder")[: limit or None]
    by_stem = files_by_stem(ref_files, "reference folder") if paired else {f.stem: f for f in ref_files}
    if paired:
        files_by_stem(src_files, "input folder")
        lonely = sorted({f.stem for f in src_files} ^ set(by_stem))
        if lonely:
            raise UserError(f"paired test folders must hold the same file names; {len(lonely)} without a partner "
                            f"({', '.join(lonely[:5])}{', ...' if len(lonely) > 5 else ''}); use --unpaired for FID/KID only")
    samples = [Sample(f.stem, lambda f=f: _image(f, c_in),
                      (lambda g=by_stem[f.stem]: _image(g, c_out)) if paired else None) for f in src_files]
    what = "pairs matched by file name" if paired else "unpaired images"
    return EvalPlan(samples, [lambda g=g: _image(g, c_out) for g in ref_files], paired,
                    f"{len(src_files)} {what}: {src} -> {ref}", src_files + ref_files)


def _resize(t: torch.Tensor, size: int | None) -> torch.Tensor:
    if not size or tuple(t.shape[-2:]) == (size, size):
        return t
    return F.interpolate(t[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0].clamp(-1, 1)


def reference_features(plan: EvalPlan, extractor: FeatureExtractor, *, size: int | None = None, batch_size: int = 16,
                       progress: ProgressFactory = no_progress) -> np.ndarray:
    images = (unit_to_uint8(_resize(load(), size)) for load in plan.references)
    return features_of_tensors(extractor, images, batch_size, progress("features of real images", len(plan.references)))


def translate_and_score(plan: EvalPlan, translate: Callable[[torch.Tensor], torch.Tensor], *,
                        extractor: FeatureExtractor | None, size: int | None = None, batch_size: int = 8,
                        progress: ProgressFactory = no_progress, save_dir: str | Path | None = None
                        ) -> tuple[np.ndarray | None, dict]:
    """Translate every sample; returns (features of the translations or None, mean paired scores or {})."""
    advance = progress("translate and score", len(plan.samples))
    sums = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}
    if save_dir is not None:
        save_dir = Path(save_dir)
        check_not_inputs(save_targets(plan, save_dir), plan.files)
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the --save folder {save_dir}: {exc.strerror or exc}") from None

    def batches() -> Iterator[list[tuple[Sample, torch.Tensor]]]:
        group: list[tuple[Sample, torch.Tensor]] = []
        for s in plan.samples:
            x = _resize(s.source(), size)
            if group and (len(group) >= batch_size or group[0][1].shape != x.shape):
                yield group
                group = []
            group.append((s, x))
        if group:
            yield group

    def outputs() -> Iterator[torch.Tensor]:
        for group in batches():
            try:
                ys = translate(torch.stack([x for _, x in group])).cpu()
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 - out of memory, a generator failing on odd sizes...
                text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                names = ", ".join(s.name for s, _ in group[:3]) + (", ..." if len(group) > 3 else "")
                raise UserError(f"cannot translate the test image(s) {names}: {text}; a smaller --batch-size or "
                                f"--image-size N may help") from None
            for (s, _), y in zip(group, ys):
                y8 = unit_to_uint8(y)
                if s.target is not None:
                    pred, truth = y8.float() / 127.5 - 1, _resize(s.target(), size)
                    if pred.shape != truth.shape:
                        raise UserError(f"{s.name}: translation is {tuple(pred.shape[-2:])} but its ground truth is "
                                        f"{tuple(truth.shape[-2:])}; give --image-size to score both at one size")
                    sums["l1"] += l1_01(pred, truth)
                    sums["psnr"] += psnr_01(pred, truth)
                    sums["ssim"] += ssim_01(pred, truth)
                if save_dir is not None:
                    save_image_atomic(tensor_to_pil(y8.float() / 127.5 - 1), save_dir / f"{s.name}.png")
                advance(1)
                yield y8

    if extractor is not None:
        feats = features_of_tensors(extractor, outputs(), batch_size=16)
    else:
        feats = None
        for _ in outputs():
            pass
    n = len(plan.samples)
    paired = {k: v / n for k, v in sums.items()} if plan.paired else {}
    return feats, paired


def evaluate_model(model: str | Path, *, a: str | Path | None = None, b: str | Path | None = None,
                   data: str | Path | None = None, direction: str | None = None, extractor: FeatureExtractor | None,
                   size: int | None = None, batch_size: int = 8, device: str = "auto", limit: int = 0,
                   kid_subsets: int = 100, kid_subset_size: int = 1000, save_dir: str | Path | None = None,
                   paired: bool | None = None, precision: str = "fp32", progress: ProgressFactory = no_progress,
                   test_dropout: bool | None = None, other_outputs: list[Path] = ()) -> dict:
    """Translate the test inputs with the model and score them (see the module docstring).

    extractor=None skips FID/KID (paired metrics only). paired=None: --a/--b are paired by file
    stem when the model's method trains on paired data (pix2pix), unpaired otherwise.
    precision defaults to fp32 so that scores do not depend on the hardware's bf16 support.
    other_outputs: files the caller will write afterwards (--json), refused up front if one is an input.
    """
    from img2img.methods import METHODS
    from img2img.translate import Translator

    translator = Translator(model, direction=direction, device=device, precision=precision, test_dropout=test_dropout)
    if paired is None:
        method_cls = METHODS.get(translator.model.method)
        paired = method_cls is not None and method_cls.dataset_kind == "paired"
    plan = plan_eval(a=a, b=b, data=data, direction=translator.direction, channels=(translator.channels, translator.out_channels), limit=limit,
                     paired=paired)
    if extractor is None and not plan.paired:
        raise UserError("this test data is unpaired, so only FID/KID apply; do not skip them")
    check_not_inputs([Path(p) for p in other_outputs], plan.files + [translator.model.path])
    if save_dir is not None:
        check_not_inputs(save_targets(plan, Path(save_dir)), plan.files)
    result: dict = {"model": str(model), "method": translator.model.method, "direction": translator.direction,
                    "data": plan.description, "mode": "paired" if plan.paired else "unpaired",
                    "images": len(plan.samples), "reference_images": len(plan.references), "image_size": size,
                    "precision": translator.precision}
    real = reference_features(plan, extractor, size=size, progress=progress) if extractor is not None else None
    fake, paired_scores = translate_and_score(plan, translator, extractor=extractor, size=size, batch_size=batch_size,
                                       progress=progress, save_dir=save_dir)
    result.update(paired_scores)
    if extractor is not None:
        result.update(distribution_scores(real, fake, kid_subsets, kid_subset_size))
        result["features"] = extractor.name
    return result
