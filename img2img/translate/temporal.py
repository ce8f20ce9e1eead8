"""--temporal: less frame-to-frame flicker from a model that translates each frame on its own.

A per-frame GAN turns small input changes (sensor noise, compression, a pixel of motion) into
visible output changes, so a still scene shimmers. The filter keeps a running pair of states: an
input state x̄ and the output ȳ that goes with it. Each new frame x_t, y_t is blended in per pixel

    changed = clamp((|blur(x_t - x̄)| - low) / (high - low), 0, 1)      (1 where the input really changed)
    w       = 1 - strength * (1 - changed)                              (weight of the new frame)
    x̄ ← x̄ + w (x_t - x̄),   ȳ ← ȳ + w (y_t - ȳ),   output ȳ

so where the input is unchanged the output is an exponential moving average (flicker falls by
about strength), and where it changed the fresh translation is used as is (no ghosting). Gating on
the accumulated state rather than on the previous frame means slow drift still triggers a refresh.
A scene cut (most pixels changed) resets the state. Thresholds are in the model's [-1, 1] units:
0.02 is about 2.5 of 255 levels.

use_flow=True (API only) first warps x̄ and ȳ onto the new frame by Farneback flow computed on a
small grayscale copy in the decode thread, to average moving regions along their motion. It is off
by default because it did not pay in bench/video_flicker.py: on a static clip the flow of noisy
frames is itself noise and every bilinear warp softens the state (error vs. the clean translation
11.8 with flow, 6.6 without; plain 11.4), and on a slow pan it was worse (13.6 vs 10.5; plain 11.0).
A random-weight generator is not shift-equivariant, so that bench cannot show what flow would do
for a trained model on a panning camera; measure there before turning it on.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def backward_flow(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Flow f with cur(p) ≈ prev(p + f(p)), as (h, w, 2) in normalised [-1, 1] grid units (x, y)."""
    flow = cv2.calcOpticalFlowFarneback(cur, prev, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                        poly_n=5, poly_sigma=1.2, flags=0)
    h, w = cur.shape[:2]
    flow[..., 0] *= 2.0 / w
    flow[..., 1] *= 2.0 / h
    return flow


def _base_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    ys = (torch.arange(h, device=device, dtype=torch.float32) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=torch.float32) * 2 + 1) / w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)[None]  # (1, H, W, 2), align_corners=False convention


def warp(t: torch.Tensor, flow: np.ndarray, base: torch.Tensor) -> torch.Tensor:
    """Sample t (1, C, H, W) at p + flow(p): the previous frame's content moved onto the new frame."""
    f = torch.from_numpy(flow).to(t.device).permute(2, 0, 1)[None]
    f = F.interpolate(f, size=t.shape[-2:], mode="bilinear", align_corners=False)
    return F.grid_sample(t, base + f.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=False)


class TemporalFilter:
    """Stateful: one instance per clip, called on consecutive batches in frame order."""

    def __init__(self, strength: float = 0.8, low: float = 0.02, high: float = 0.08, use_flow: bool = False,
                 cut: float = 0.6, blur: int = 5):
        if not 0.0 <= strength < 1.0:
            raise ValueError("temporal strength must be in [0, 1)")
        self.strength, self.low, self.high, self.use_flow, self.cut, self.blur = strength, low, high, use_flow, cut, blur
        self.state: torch.Tensor | None = None  # x̄ and ȳ concatenated on channels, (1, Cx + Cy, H, W)
        self._base: torch.Tensor | None = None

    def reset(self) -> None:
        self.state = None

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, flows: list | None = None) -> torch.Tensor:
        """x: inputs, y: their translations, (N, C, H, W) at the same size; flows[i]: backward_flow for frame i."""
        cx = x.shape[1]
        outs = []
        for i in range(x.shape[0]):
            new = torch.cat((x[i : i + 1], y[i : i + 1].to(x.dtype)), dim=1)
            if self.state is None or self.state.shape != new.shape:
                self.state = new
            else:
                state = self.state
                flow = flows[i] if flows and i < len(flows) else None
                if self.use_flow and flow is not None:
                    if self._base is None or self._base.shape[1:3] != new.shape[-2:]:
                        self._base = _base_grid(new.shape[-2], new.shape[-1], new.device)
                    state = warp(state, flow, self._base)
                diff = F.avg_pool2d(new[:, :cx] - state[:, :cx], self.blur, stride=1, padding=self.blur // 2,
                                    count_include_pad=False).abs().mean(1, keepdim=True)
                changed = ((diff - self.low) / (self.high - self.low)).clamp_(0, 1)
                # a scene cut: most of the frame changed, so start over rather than blend two scenes
                changed = torch.where(changed.mean() > self.cut, torch.ones_like(changed), changed)
                w = 1.0 - self.strength * (1.0 - changed)
                self.state = state + w * (new - state)
            outs.append(self.state[:, cx:])
        return torch.cat(outs).to(y.dtype)


def flicker(frames: torch.Tensor | np.ndarray) -> float:
    """Mean absolute difference between consecutive frames (any range; (T, ...) array)."""
    f = torch.as_tensor(np.asarray(frames) if isinstance(frames, np.ndarray) else frames).float()
    return float((f[1:] - f[:-1]).abs().mean()) if f.shape[0] > 1 else 0.0
