"""Image quality metrics.

paired.py        L1, PSNR, SSIM against ground truth (tensors in [-1, 1], [0, 1] scale)
distribution.py  FID and KID between two feature sets
features.py      the Inception-v3 feature network (optional `metrics` extra) and a random stand-in for tests
evaluate.py      folders against folders, models on test data
"""

from img2img.metrics.distribution import KID, fid, frechet_distance, kid
from img2img.metrics.paired import l1_01, psnr_01, ssim_01

__all__ = ["l1_01", "psnr_01", "ssim_01", "fid", "kid", "KID", "frechet_distance"]
