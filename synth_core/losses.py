"""Loss terms. Stateless functions of embeddings/images; the methods decide weights and schedules."""

from __future__ import annotations

import torch


def semantic_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, negative_emb: torch.Tensor | None = None,
    negative_weight: float = 0.3, copies: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIPDraw's loss per scene: sum over augmented copies of -cos(text, copy) + w * cos(negative, copy).

    ``image_emb`` [B * copies, D] (b-major) and ``text_emb`` [1, D] / ``negative_emb`` [K, D] are
    L2-normalised. Returns (loss [B], mean similarity to the prompt [B]).
    """
    sim = (image_emb @ text_emb.T)[:, 0].reshape(-1, copies)  # [B, copies]
    loss = -sim.sum(1)
    if negative_emb is not None and negative_emb.numel():
        neg = (image_emb @ negative_emb.T).reshape(-1, copies, negative_emb.shape[0])
        loss = loss + negative_weight * neg.sum(dim=(1, 2))
    return loss, sim.mean(1).detach()
