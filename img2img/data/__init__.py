"""Image I/O, folder datasets, paired transforms and synthetic data."""

from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.data.io import list_images, load_image, pil_to_tensor, tensor_to_pil

__all__ = ["StepBatchSampler", "build_dataset", "list_images", "load_image", "pil_to_tensor", "tensor_to_pil"]
