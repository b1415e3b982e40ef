"""The candidate scorer: one score per (step, candidate instruction), softmax over the step's set.

    context  = MLP[P(task), P(last instruction), P(knowledge), P_img(image) * has_image, has_image, ctx features]
    cand_c   = MLP[P_c(candidate text), candidate features]
    h_c      = MLP[context, cand_c, context * cand_c]
    score_c  = MLP[h_c, max over the set of h]        (the set term lets "done" see what is left)

P, P_c and P_img are linear projections of frozen MiniLM (384-d) and EfficientNet-lite0
(1280-d) features. A few tens of thousands of parameters: trains in minutes on a CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from policies.learned.config import ScorerConfig

NEG = -1e9


class CandidateScorer(nn.Module):
    def __init__(self, cfg: ScorerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        P, H = cfg.proj, cfg.hidden
        self.p_task = nn.Linear(cfg.text_dim, P)
        self.p_last = nn.Linear(cfg.text_dim, P)
        self.p_know = nn.Linear(cfg.text_dim, P)
        n_img = 0
        if cfg.use_image:
            self.p_img = nn.Linear(cfg.image_dim, cfg.image_proj)
            n_img = cfg.image_proj + 1
        self.ctx = nn.Sequential(nn.Linear(3 * P + n_img + cfg.n_ctx, H), nn.GELU(), nn.Dropout(cfg.dropout))
        self.p_cand = nn.Linear(cfg.text_dim, P)
        self.cand = nn.Sequential(nn.Linear(P + cfg.n_cand, H), nn.GELU())
        self.mlp1 = nn.Sequential(nn.Linear(3 * H, H), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(H, H), nn.GELU())
        self.mlp2 = nn.Sequential(nn.Linear(2 * H, H), nn.GELU(), nn.Linear(H, 1))

    def forward(self, task: torch.Tensor, last: torch.Tensor, know: torch.Tensor, ctx: torch.Tensor,
                cand_e: torch.Tensor, cand_f: torch.Tensor, mask: torch.Tensor,
                image: torch.Tensor | None = None, has_image: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C) scores; padded candidates (mask False) get a large negative score."""
        parts = [self.p_task(task), self.p_last(last), self.p_know(know)]
        if self.cfg.use_image:
            B = task.shape[0]
            if image is None:
                image = task.new_zeros(B, self.cfg.image_dim)
                has_image = task.new_zeros(B)
            flag = has_image.float().reshape(B, 1)
            if self.training and self.cfg.image_dropout > 0:
                flag = flag * (torch.rand(B, 1) >= self.cfg.image_dropout).float()
            parts += [self.p_img(image) * flag, flag]
        parts.append(ctx)
        c = self.ctx(torch.cat(parts, -1))  # (B, H)
        k = self.cand(torch.cat([self.p_cand(cand_e), cand_f], -1))  # (B, C, H)
        cc = c.unsqueeze(1).expand_as(k)
        h = self.mlp1(torch.cat([cc, k, cc * k], -1))
        g = h.masked_fill(~mask.unsqueeze(-1), NEG).max(1).values  # (B, H)
        s = self.mlp2(torch.cat([h, g.unsqueeze(1).expand_as(h)], -1)).squeeze(-1)
        return s.masked_fill(~mask, NEG)
