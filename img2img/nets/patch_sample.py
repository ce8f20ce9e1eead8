"""CUT's patch sampler and projection head ("PatchSampleF" in the reference code).

For each tapped encoder layer: pick P spatial positions (the same ones for every image of the batch,
and, when the caller passes them back, the same ones for the source and the translated image), map the
C-channel feature at each through a 2-layer MLP (C -> 256 -> 256, ReLU between) and L2-normalise.
The reference builds its MLPs lazily on the first batch; here they are built up front from the
layers' channel counts, so the optimizer, checkpoints and resume see every weight from step 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchSampleMLP(nn.Module):
    def __init__(self, channels: list[int], width: int = 256):
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width)) for c in channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int,
                patch_ids: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(embeddings per layer, each (B * P, width); the patch ids used, to sample the other image alike)."""
        out, ids = [], []
        for i, (feat, head) in enumerate(zip(feats, self.heads)):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H*W, C)
            if patch_ids is None:
                pid = torch.randperm(flat.shape[1], device=feat.device)[:min(num_patches, flat.shape[1])]
            else:
                pid = patch_ids[i]
            x = head(flat[:, pid, :].flatten(0, 1).float())
            out.append(F.normalize(x, dim=1, eps=1e-7))
            ids.append(pid)
        return out, ids
