"""The paper's 1-D UNet (Novitskiy et al., Fig. 2b; after Ho et al.'s 2-D DDPM UNet).

The 64×3 matrix is a length-64 sequence with 3 channels; per-row element features from the condition
encoder (plus a row-type embedding: site / padding / lattice) are concatenated as extra input channels.
Residual blocks are modulated (scale and shift) by the global condition vector. The paper's network is
``UNet1D(channels=128, num_res_blocks=7, attention_resolutions=(1, 2, 4, 8))`` (305 M parameters); the
defaults here are a compact CPU-sized version.
"""

from __future__ import annotations

import torch
from torch import nn

from ..representation import MATRIX_ROWS
from .conditioning import ConditionEncoder, Conditions


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4) or 1, channels)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, c_emb: int):
        super().__init__()
        self.in_layers = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv1d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(c_emb, 2 * c_out))
        self.out_norm = _norm(c_out)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Conv1d(c_out, c_out, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        scale, shift = self.emb(emb).unsqueeze(-1).chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = _norm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x, emb=None):
        h = self.norm(x).transpose(1, 2)
        return x + self.attn(h, h, h, need_weights=False)[0].transpose(1, 2)


class UNet1D(nn.Module):
    """Conditional 1-D UNet: f(x_t, t, conditions) -> (B, 64, 3)."""

    def __init__(self, channels: int = 64, num_res_blocks: int = 2, channel_mult=(1, 2, 2, 2),
                 attention_resolutions=(2, 4, 8), with_initial: bool = False):
        super().__init__()
        self.config = {"arch": "unet1d", "channels": channels, "num_res_blocks": num_res_blocks,
                       "channel_mult": list(channel_mult), "attention_resolutions": list(attention_resolutions),
                       "with_initial": with_initial}
        emb = channels * 4
        self.conditions = ConditionEncoder(emb)
        self.row_type = nn.Embedding(3, 16)
        self.site_proj = nn.Linear(emb, 32)
        c_in = 3 * (2 if with_initial else 1) + 16 + 32
        self.input = nn.Conv1d(c_in, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch, resolution = [channels], channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, channels * mult, emb)]
                ch = channels * mult
                if resolution in attention_resolutions:
                    layers.append(Attention(ch))
                self.down.append(nn.ModuleList(layers))
                skips.append(ch)
            if level < len(channel_mult) - 1:
                self.down.append(nn.ModuleList([nn.Conv1d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
                resolution *= 2
        self.middle = nn.ModuleList([ResBlock(ch, ch, emb), Attention(ch), ResBlock(ch, ch, emb)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), channels * mult, emb)]
                ch = channels * mult
                if resolution in attention_resolutions:
                    layers.append(Attention(ch))
                if level and i == num_res_blocks:
                    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    resolution //= 2
                self.up.append(nn.ModuleList(layers))
        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv1d(ch, 3, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @staticmethod
    def _run_layers(layers, h, emb):
        for layer in layers:
            h = layer(h, emb) if isinstance(layer, (ResBlock, Attention)) else layer(h)
        return h

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
        c, per_site = self.conditions(t, cond)
        row_type = torch.full(cond.site_mask.shape, 1, dtype=torch.long, device=x.device)
        row_type[cond.site_mask] = 0
        row_type[:, MATRIX_ROWS - 3 :] = 2
        inputs = [x] if cond.initial is None else [x, cond.initial]
        inputs += [self.row_type(row_type), self.site_proj(per_site)]
        h = self.input(torch.cat(inputs, dim=-1).transpose(1, 2))
        hs = [h]
        for layers in self.down:
            h = self._run_layers(layers, h, c)
            hs.append(h)
        h = self._run_layers(self.middle, h, c)
        for layers in self.up:
            h = self._run_layers(layers, torch.cat([h, hs.pop()], dim=1), c)
        out = self.out(h).transpose(1, 2)
        return out * cond.row_mask().unsqueeze(-1)


def paper_unet(**kwargs) -> UNet1D:
    """The network of the paper's Appendix A.3 (128 channels, 7 residual blocks, attention at 1,2,4,8)."""
    return UNet1D(channels=128, num_res_blocks=7, attention_resolutions=(1, 2, 4, 8), **kwargs)
