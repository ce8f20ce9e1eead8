"""The shared training loop, checkpoints and schedules."""

from img2img.train.loop import TrainResult, resume_config, train
from img2img.train.timed import train_for

__all__ = ["TrainResult", "resume_config", "train", "train_for"]
