"""Distribution metrics between two sets of image features: FID and KID.

Both take feature matrices (N, D), one row per image, normally Inception-v3 pool features
(features.py). Computed in float64 with numpy; no scipy needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from img2img.errors import UserError


def _as_features(f: np.ndarray, what: str, minimum: int = 2) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{what}: features must be a 2-D array (images, dims), got shape {f.shape}")
    if f.shape[0] < minimum:
        raise UserError(f"{what}: FID/KID need at least {minimum} images, got {f.shape[0]}")
    return f


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues from round-off are zeroed)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of S1 S2, which equal those
    of the symmetric matrix S1^(1/2) S2 S1^(1/2); using that form keeps everything real and stable,
    even for the singular covariances of fewer images than feature dimensions.
    """
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
    return max(value, 0.0)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet Inception Distance (Heusel et al. 2017) between two feature sets.

    With fewer images than feature dimensions (the usual case for test sets: a few hundred images,
    2048 dims) the covariances have low rank, and the trace term is computed exactly in the small
    space: with centred, 1/sqrt(n-1)-scaled feature matrices X (n1 x d) and Y (n2 x d), S1 = X'X and
    S2 = Y'Y, the non-zero eigenvalues of S1 S2 are the squared singular values of X Y', so
    Tr((S1 S2)^(1/2)) is the sum of the singular values of the n1 x n2 matrix X Y'. That costs
    milliseconds instead of two 2048 x 2048 eigendecompositions, and gives the same number.
    """
    a, b = _as_features(features_a, "first set"), _as_features(features_b, "second set")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    if min(a.shape[0], b.shape[0]) > a.shape[1]:
        return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    x = (a - a.mean(0)) / np.sqrt(a.shape[0] - 1)
    y = (b - b.mean(0)) / np.sqrt(b.shape[0] - 1)
    tr_covmean = np.linalg.svd(x @ y.T, compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return max(float(diff @ diff + (x * x).sum() + (y * y).sum() - 2 * tr_covmean), 0.0)


@dataclass
class KID:
    mean: float
    std: float
    subsets: int
    subset_size: int


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> KID:
    """Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD^2 with the cubic kernel
    k(x, y) = (x.y / d + 1)^3, averaged over random subsets (without replacement within a subset).

    As in the paper and clean-fid: `subsets` subsets of m = min(subset_size, len(a), len(b)) images
    each; we report the mean and the standard deviation over subsets.
    """
    a, b = _as_features(features_a, "first set"), _as_features(features_b, "second set")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}")
    d = a.shape[1]
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        k_xx = (x @ x.T / d + 1) ** 3
        k_yy = (y @ y.T / d + 1) ** 3
        k_xy = (x @ y.T / d + 1) ** 3
        off_diag = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[s] = off_diag - 2 * k_xy.sum() / (m * m)
    return KID(float(values.mean()), float(values.std()), subsets, m)
