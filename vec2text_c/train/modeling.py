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


class CopyGate(nn.Module):
    """The copy gate of a corrector (ours): at decoder step t, `weight . s_t + bias` (s_t the
    decoder's final hidden state, after its final norm) is added to the logit of the hypothesis'
    t-th token. Zeros at first, so that a corrector gaining the gate starts as it was."""

    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d))
        self.bias = nn.Parameter(torch.zeros(1))


class CorrectorModule(nn.Module):
    """(target e, hypothesis embedding h, hypothesis ids) -> the corrected text.

    Encoder input: [S, T1(e), S, T3(h), S, T2(e - h), S, Emb(ids)] with S the `</s>` embedding
    row, then LayerNorm over every row; the mask is ones for the 3R + 4 embedding rows and
    `ids != 0` for the hypothesis tokens.

    copy_gate (ours, off in vec2text's models; see CopyGate): a learnt, state-dependent bonus for
    keeping the hypothesis' token at each step, so that keeping the right tokens of a hypothesis
    is learnt at once; without it, copying must be found through cross-attention, which a small
    corrector trained on a CPU never finds (it rewrites every hypothesis, right ones included).
    Its parameters learn `lr_multipliers` times faster than the rest."""

    def __init__(self, t5_config: dict, embedder_dim: int, num_repeat_tokens: int, dropout: float = 0.0,
                 copy_gate: bool = False):
        super().__init__()
        self.encoder_decoder = make_t5(t5_config)
        self.d_model = d = int(t5_config["d_model"])
        self.num_repeat_tokens = r = int(num_repeat_tokens)
        self.embedding_transform_1 = _mlp(embedder_dim, d * r, dropout)
        self.embedding_transform_2 = _mlp(embedder_dim, d * r, dropout)
        self.embedding_transform_3 = _mlp(embedder_dim, d * r, dropout)
        self.layernorm = nn.LayerNorm(d)
        self.copy_gate = CopyGate(d) if copy_gate else None
        if copy_gate:
            self.lr_multipliers = {"copy_gate.weight": 20.0, "copy_gate.bias": 100.0}

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

    def copy_logits(self, states: torch.Tensor, hyp_ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """[B, n, V] logits of the decoder's final states [B, n, d] at steps start..start+n-1, the
        copy gate's bonus added on each step's hypothesis token (the row's first id is the
        decoder's start token, then the tokens and `</s>`; nothing past its end)."""
        t5 = self.encoder_decoder
        scaled = states * (self.d_model ** -0.5) if t5.config.tie_word_embeddings else states
        logits = t5.lm_head(scaled)
        n = states.shape[1]
        h = hyp_ids[:, 1 + start:1 + start + n]
        if h.shape[1] < n:
            h = torch.nn.functional.pad(h, (0, n - h.shape[1]))
        gate = (states @ self.copy_gate.weight.to(states.dtype) + self.copy_gate.bias.to(states.dtype))
        gate = gate * (h != 0).to(gate.dtype)
        return logits.scatter_add(-1, h.unsqueeze(-1), gate.unsqueeze(-1).to(logits.dtype))

    def forward(self, target, hyp_emb, hyp_ids, labels) -> torch.Tensor:
        x, mask = self.encoder_inputs(target, hyp_emb, hyp_ids)
        t5 = self.encoder_decoder
        if self.copy_gate is None:
            return t5(inputs_embeds=x, attention_mask=mask, labels=labels).loss
        enc = t5.encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
        dec = t5.decoder(input_ids=t5._shift_right(labels), encoder_hidden_states=enc,
                         encoder_attention_mask=mask).last_hidden_state
        logits = self.copy_logits(dec, hyp_ids)
        return nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                           ignore_index=-100)

    @torch.no_grad()
    def generate_greedy(self, target, hyp_emb, hyp_ids, max_length: int) -> torch.Tensor:
        """Greedy decoding of the corrected text: [B, <= max_length] ids that start with the
        decoder's start token (what transformers' generate returns), the copy gate applied when on."""
        x, mask = self.encoder_inputs(target, hyp_emb, hyp_ids)
        t5 = self.encoder_decoder
        if self.copy_gate is None:
            return t5.generate(inputs_embeds=x, attention_mask=mask, max_length=max_length, do_sample=False,
                               num_beams=1)
        enc = t5.encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
        start, eos = t5.config.decoder_start_token_id, t5.config.eos_token_id
        out = torch.full((x.shape[0], 1), start, dtype=torch.long, device=x.device)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        past = None
        for t in range(max_length - 1):
            o = t5.decoder(input_ids=out[:, -1:], encoder_hidden_states=enc, encoder_attention_mask=mask,
                           past_key_values=past, use_cache=True)
            past = o.past_key_values
            nxt = self.copy_logits(o.last_hidden_state, hyp_ids, t)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, t5.config.pad_token_id), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == eos
            if bool(done.all()):
                break
        return out
