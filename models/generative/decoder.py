"""AdaIN decoder: a structure map and an appearance code → an image."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import AdaINResBlock, GroupedMLP, PointwiseConv, conv, init_kaiming
from ..recompute import run_stage, run_stages


class Decoder(nn.Module):
    """`n_res` AdaIN residual blocks → 2 × (5×5 conv, layer norm; the first `upsample` of them after a
    nearest ×2 upsampling, fused) → convs to RGB. `upsample` matches the structure encoder's `downsample`.

    The AdaIN scales and biases of the 2·n_res norms come from the appearance code (B, C, S) through
    2·S MLPs, one for scales and one for biases per share of the parameters (with the paper's
    S = n_res = 4, share s is residual block s). `mlp_input` says what each MLP sees: "stripe" — its
    own stripe of the code (C → mlp_dim → mlp_dim → share), or "code" — the whole code flattened
    channel-first (C·S → …), as the reference implementation's MLPs do. `recompute`: each block's and
    each upsampling stage's inner activations are computed again in backward instead of kept.
    """

    MLP_INPUTS = ("stripe", "code")

    def __init__(self, dim: int, code_dim: int, stripes: int, mlp_dim: int = 512, n_res: int = 4,
                 mlp_norm: str = "none", mlp_input: str = "stripe", upsample: int = 2, recompute: bool = False):
        super().__init__()
        per_kind = 2 * n_res * dim  # scales (or biases) for all AdaIN layers
        if per_kind % stripes:
            raise ValueError(f"{stripes} stripes cannot share the {per_kind} AdaIN scales of {n_res} blocks "
                             f"of width {dim} evenly")
        if mlp_input not in self.MLP_INPUTS:
            raise ValueError(f"unknown gen.mlp_input {mlp_input!r}; choose one of {', '.join(self.MLP_INPUTS)}")
        self.stripes, self.n_res, self.dim, self.mlp_input = stripes, n_res, dim, mlp_input
        self.recompute = recompute
        # groups 0..S-1 give scales, S..2S-1 biases
        width = code_dim if mlp_input == "stripe" else code_dim * stripes
        self.mlp = GroupedMLP(2 * stripes, [width, mlp_dim, mlp_dim, per_kind // stripes], mlp_norm)
        self.blocks = nn.ModuleList([AdaINResBlock(dim) for _ in range(n_res)])
        self.upsample = nn.Sequential(
            conv(dim, dim // 2, 5, norm="ln", upsample=upsample >= 1),
            conv(dim // 2, dim // 4, 5, norm="ln", upsample=upsample >= 2),
            conv(dim // 4, dim // 4, 3), conv(dim // 4, dim // 4, 3),
            PointwiseConv(dim // 4, 3))
        init_kaiming(self)

    def forward(self, structure: torch.Tensor, code: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, H, W) from codes (B, C, S) and structure maps: item i draws structure[i], or
        structure[index[i]] when `index` is given (several appearances of one map cost one first convolution)."""
        b = code.shape[0]
        if self.mlp_input == "stripe":
            inputs = code.transpose(1, 2).repeat(1, 2, 1)  # (B, 2S, C): stripe s feeds groups s and S + s
        else:
            inputs = code.flatten(1).unsqueeze(1).expand(b, 2 * self.stripes, -1)  # (B, 2S, C·S)
        params = self.mlp(inputs)
        scales = params[:, :self.stripes].reshape(b, self.n_res, 2, self.dim)
        biases = params[:, self.stripes:].reshape(b, self.n_res, 2, self.dim)
        x = structure
        for i, block in enumerate(self.blocks):
            x = run_stage(block, x, scales[:, i], biases[:, i], index if i == 0 else None, recompute=self.recompute)
        return run_stages(self.upsample, x, self.recompute)
