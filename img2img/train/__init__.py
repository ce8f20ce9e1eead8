"""The shared training loop, checkpoints and schedules."""

from img2img.train.loop import TrainResult, resume_config, train

__all__ = ["TrainResult", "resume_config", "train"]
