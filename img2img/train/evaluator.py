"""FID on held-out folders during training, keeping the best model (model_best.pt).

Built before the loop from the train.eval_* settings; the loop calls it every train.eval_every
steps (and at the last step) with a function that writes the model file, and logs what it returns
as an "eval" line in log.jsonl. The evaluator scores the file so written, so the score is of exactly
what model_best.pt will hold (EMA weights, test-time norm), whatever the loop puts in it.
A resumed run reads the best FID so far back from that log, so model_best.pt is only replaced by
a better model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch

from img2img.config import RunConfig
from img2img.metrics.evaluate import distribution_scores, plan_eval, reference_features, translate_and_score
from img2img.metrics.features import FeatureExtractor, load_inception
from img2img.methods import get_method
from img2img.modelfile import load_model
from img2img.translate.translator import Translator

BEST_MODEL_FILE = "model_best.pt"
CANDIDATE_FILE = ".model_eval.pt"  # the model being scored; renamed to model_best.pt if it wins


def _previous_best(log_path: Path) -> float:
    best = float("inf")
    if log_path.is_file():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("event") == "eval" and isinstance(record.get("fid"), (int, float)):
                best = min(best, float(record["fid"]))
    return best


class FIDEvaluator:
    """Translate the held-out inputs with the current generator, score FID/KID against the held-out
    references, and write model_best.pt when FID improves.

    Images are resized to the training size (data.image_size), as the reference test scripts
    load them at the crop size; data.direction picks the input side of paired data.
    """

    def __init__(self, cfg: RunConfig, out_dir: str | Path, device: torch.device | str = "cpu",
                 extractor: FeatureExtractor | None = None, log_name: str = "log.jsonl"):
        t = cfg.train
        if t.eval_every <= 0:
            raise ValueError("FIDEvaluator needs train.eval_every > 0")
        self.every, self.out = t.eval_every, Path(out_dir)
        self.device = torch.device(device)
        self.size = cfg.data.image_size
        self.direction = cfg.data.direction
        self.extractor = extractor or load_inception(t.eval_inception, self.device)
        paired = get_method(cfg.method).dataset_kind == "paired"
        self.plan = plan_eval(a=t.eval_a, b=t.eval_b, data=t.eval_data, direction=self.direction,
                              channels=cfg.data.direction_channels(self.direction), limit=t.eval_max, paired=paired)
        self.real = reference_features(self.plan, self.extractor, size=self.size)
        self.best = _previous_best(self.out / log_name)

    def due(self, step: int, total: int) -> bool:
        return step % self.every == 0 or step == total

    def __call__(self, step: int, write_model: Callable[[Path], None]) -> dict:
        """Score the model as it would be shipped (write_model writes it: EMA weights, test-time norm...)."""
        candidate = self.out / CANDIDATE_FILE
        write_model(candidate)
        try:
            mf = load_model(candidate)
            direction = self.direction if self.direction in mf.directions else None
            translator = Translator(mf, direction=direction, device=str(self.device), precision="fp32")
            fake, paired = translate_and_score(self.plan, translator, extractor=self.extractor, size=self.size)
            scores = {**distribution_scores(self.real, fake), **paired}
            improved = scores["fid"] < self.best
            if improved:
                self.best = scores["fid"]
                os.replace(candidate, self.out / BEST_MODEL_FILE)
        finally:
            candidate.unlink(missing_ok=True)
        return {**scores, "best_fid": self.best, "improved": improved, "images": len(self.plan.samples)}


def build_evaluator(cfg: RunConfig, out_dir: str | Path, device: torch.device | str) -> FIDEvaluator | None:
    """The evaluator the settings ask for, or None when train.eval_every is 0."""
    if cfg.train.eval_every <= 0:
        return None
    return FIDEvaluator(cfg, out_dir, device)
