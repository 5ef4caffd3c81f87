"""PyTorch training forms of vec2text's InversionModel and CorrectorEncoderModel.

Same parameters under the same names as vec2text 0.0.13 (`embedding_transform.{0,3}`,
`embedding_transform_{1,2,3}.{0,3}`, `layernorm`, `encoder_decoder.*`), and the same forward
math as the inference path in csrc/vec2text (tests/test_train.py checks the two agree), so a
trained state dict is a vec2text checkpoint as it stands.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["InversionModule", "CorrectorModule", "make_t5", "bow_logits", "bow_loss"]


def make_t5(config: dict):
    import transformers

    return transformers.T5ForConditionalGeneration(transformers.T5Config(**config))


def _mlp(dim: int, out: int, dropout: float) -> nn.Sequential:
    # Linear -> Dropout -> GELU(erf) -> Linear, as vec2text builds its embedding transforms
    return nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout), nn.GELU(), nn.Linear(dim, out))


class InversionModule(nn.Module):
    """embedding [B, D] -> num_repeat_tokens pseudo-token rows -> T5 encoder -> decoder."""

    def __init__(self, t5_config: dict, embedder_dim: int, num_repeat_tokens: int, dropout: float = 0.0):
        super().__init__()
        self.encoder_decoder = make_t5(t5_config)
        self.d_model = int(t5_config["d_model"])
        self.num_repeat_tokens = int(num_repeat_tokens)
        self.embedding_transform = _mlp(embedder_dim, self.d_model * self.num_repeat_tokens, dropout)

    def encoder_inputs(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding_transform(embeddings).reshape(embeddings.shape[0], self.num_repeat_tokens, self.d_model)
        return x, torch.ones(x.shape[:2], dtype=torch.long, device=x.device)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, bow_weight: float = 0.0) -> torch.Tensor:
        """The token cross-entropy, plus `bow_weight` times the bag-of-words loss of the encoder
        output (see bow_loss). The parts are kept in `last_parts` for logging."""
        x, mask = self.encoder_inputs(embeddings)
        out = self.encoder_decoder(inputs_embeds=x, attention_mask=mask, labels=labels)
        self.last_parts = {"ce": float(out.loss.detach())}
        if not bow_weight:
            return out.loss
        bow = bow_loss(self.encoder_decoder, out.encoder_last_hidden_state, labels)
        self.last_parts["bow"] = float(bow.detach())
        return out.loss + bow_weight * bow


def bow_logits(t5, encoder_states: torch.Tensor) -> torch.Tensor:
    """[B, V] bag-of-words logits: the mean of the encoder output rows through the tied output
    embedding (scaled by d_model^-0.5 as T5 scales its decoder output). No parameters of its
    own, so the C core can compute the same proposals from a checkpoint."""
    pooled = encoder_states.mean(1) * (t5.config.d_model ** -0.5)
    return pooled @ t5.shared.weight.t()


def bow_loss(t5, encoder_states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The bag-of-words loss (Zhao et al. 2017): minus the mean log-probability, under one
    softmax over the vocabulary, of each distinct target token (pad, </s> and -100 left out).
    It rewards encoder states from which the target's words can be read, the decoder's cue to
    use its conditioning."""
    logp = torch.log_softmax(bow_logits(t5, encoder_states).float(), dim=-1)
    lab = labels.clamp(min=0)
    bag = torch.zeros_like(logp).scatter_(1, lab, 1.0)
    bag[:, 0] = 0.0
    bag[:, 1] = 0.0
    n = bag.sum(1).clamp(min=1.0)
    return (-(bag * logp).sum(1) / n).mean()


class CorrectorModule(nn.Module):
    """(target e, hypothesis embedding h, hypothesis ids) -> the corrected text.

    Encoder input: [S, T1(e), S, T3(h), S, T2(e - h), S, Emb(ids)] with S the `</s>` embedding
    row, then LayerNorm over every row; the mask is ones for the 3R + 4 embedding rows and
    `ids != 0` for the hypothesis tokens."""

    def __init__(self, t5_config: dict, embedder_dim: int, num_repeat_tokens: int, dropout: float = 0.0):
        super().__init__()
        self.encoder_decoder = make_t5(t5_config)
        self.d_model = d = int(t5_config["d_model"])
        self.num_repeat_tokens = r = int(num_repeat_tokens)
        self.embedding_transform_1 = _mlp(embedder_dim, d * r, dropout)
        self.embedding_transform_2 = _mlp(embedder_dim, d * r, dropout)
        self.embedding_transform_3 = _mlp(embedder_dim, d * r, dropout)
        self.layernorm = nn.LayerNorm(d)

    def encoder_inputs(self, target: torch.Tensor, hyp_emb: torch.Tensor, hyp_ids: torch.Tensor):
        b, r, d = target.shape[0], self.num_repeat_tokens, self.d_model
        t1 = self.embedding_transform_1(target).reshape(b, r, d)
        t2 = self.embedding_transform_2(target - hyp_emb).reshape(b, r, d)
        t3 = self.embedding_transform_3(hyp_emb).reshape(b, r, d)
        emb = self.encoder_decoder.get_input_embeddings()
        sep = emb.weight[1].reshape(1, 1, d).expand(b, 1, d)
        x = torch.cat([sep, t1, sep, t3, sep, t2, sep, emb(hyp_ids)], dim=1)
        x = self.layernorm(x)
        mask = torch.cat(
            [torch.ones((b, 3 * r + 4), dtype=torch.long, device=x.device), (hyp_ids != 0).long()], dim=1
        )
        return x, mask

    def forward(self, target, hyp_emb, hyp_ids, labels) -> torch.Tensor:
        x, mask = self.encoder_inputs(target, hyp_emb, hyp_ids)
        return self.encoder_decoder(inputs_embeds=x, attention_mask=mask, labels=labels).loss
