"""PyTorch training forms of vec2text's InversionModel and CorrectorEncoderModel.

Same parameters under the same names as vec2text 0.0.13 (`embedding_transform.{0,3}`,
`embedding_transform_{1,2,3}.{0,3}`, `layernorm`, `encoder_decoder.*`), and the same forward
math as the inference path in csrc/vec2text (tests/test_train.py checks the two agree), so a
trained state dict is a vec2text checkpoint as it stands.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["InversionModule", "CorrectorModule", "make_t5", "bow_logits", "bow_loss", "unlikelihood_loss",
           "repeated_ngrams"]


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

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, bow_weight: float = 0.0,
                unlikelihood: float = 0.0, seq_unlikelihood: float = 0.0, seq_rows: float = 0.25) -> torch.Tensor:
        """The token cross-entropy, plus `bow_weight` times the bag-of-words loss of the encoder
        output (see bow_loss), plus `unlikelihood` times the token-level unlikelihood loss (see
        unlikelihood_loss), plus `seq_unlikelihood` times the sequence-level one on the greedy
        decodings of the batch's first `seq_rows` fraction (see sequence_unlikelihood). The parts
        are kept in `last_parts` for logging."""
        x, mask = self.encoder_inputs(embeddings)
        out = self.encoder_decoder(inputs_embeds=x, attention_mask=mask, labels=labels)
        self.last_parts = {"ce": float(out.loss.detach())}
        loss = out.loss
        if bow_weight:
            bow = bow_loss(self.encoder_decoder, out.encoder_last_hidden_state, labels)
            self.last_parts["bow"] = float(bow.detach())
            loss = loss + bow_weight * bow
        if unlikelihood:
            ul = unlikelihood_loss(out.logits, labels)
            self.last_parts["ul"] = float(ul.detach())
            loss = loss + unlikelihood * ul
        if seq_unlikelihood:
            rows = max(1, int(round(seq_rows * len(embeddings))))
            sul, frac = self.sequence_unlikelihood(x[:rows], mask[:rows], out.encoder_last_hidden_state[:rows],
                                                   max_length=labels.shape[1] + 1)
            self.last_parts["seq_ul"] = float(sul.detach())
            self.last_parts["repeats"] = frac
            loss = loss + seq_unlikelihood * sul
        return loss

    def sequence_unlikelihood(self, x: torch.Tensor, mask: torch.Tensor, enc: torch.Tensor, max_length: int,
                              n: int = 4) -> tuple[torch.Tensor, float]:
        """Sequence-level unlikelihood (Welleck et al. 2020) on the model's own greedy decodings:
        decode the rows greedily (dropout off, no gradient), as the correction loop's first
        hypothesis is made, then minus log(1 - p) of every token of each n-gram that repeats an
        earlier one of its row (repeated_ngrams), under the decoder fed that decoding and the
        encoder states `enc` (with gradient), over the decoded tokens. Teacher forcing never
        shows the decoder its own loops; this penalises them where they happen.
        Returns the loss and the fraction of rows that had a repeat."""
        t5 = self.encoder_decoder
        was = self.training
        self.eval()
        with torch.no_grad():
            ids = t5.generate(inputs_embeds=x.detach(), attention_mask=mask, max_length=max_length,
                              do_sample=False, num_beams=1)
        self.train(was)
        return _repeat_unlikelihood(t5, ids, enc, mask, n,
                                    lambda dec: t5.lm_head(dec * (self.d_model ** -0.5)
                                                           if t5.config.tie_word_embeddings else dec))


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


def unlikelihood_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token-level unlikelihood (Welleck et al. 2020): at each target step t, minus the sum of
    log(1 - p(c)) over the candidates c, the distinct tokens of the target's earlier steps other
    than the step's own token, averaged over the target steps (-100 and pad left out). It
    lowers the probability of repeating what was already written, the greedy decoder's
    failure of "headheadhead…" and "considered considered…", without touching the right token.
    logits [B, T, V], labels [B, T] (-100 past the end)."""
    b, t = labels.shape
    lab = labels.clamp(min=0)
    valid = (labels > 0)
    earlier = torch.ones(t, t, dtype=torch.bool, device=labels.device).tril(-1)  # [step, earlier step]
    same = lab[:, :, None] == lab[:, None, :]  # [B, t, j]: step t's token is step j's
    first = ~(same & earlier[None]).any(2)  # [B, j]: step j's token did not occur before j
    cand = earlier[None] & (valid & first)[:, None, :] & ~same & valid[:, :, None]
    p = torch.softmax(logits.float(), dim=-1).gather(2, lab[:, None, :].expand(b, t, t))  # p_t(token of j)
    terms = -torch.log((1.0 - p).clamp(min=1e-5)) * cand
    return terms.sum() / valid.sum().clamp(min=1)


def _repeat_unlikelihood(t5, ids: torch.Tensor, enc: torch.Tensor, mask: torch.Tensor, n: int, head):
    """The sequence-level unlikelihood of a greedy decoding `ids` (start token first): the decoder
    fed it under `enc` (with gradient), `head` its states -> logits, minus log(1 - p) of each
    token of a repeated n-gram, over the decoded tokens; and the fraction of rows with a repeat."""
    y = ids[:, 1:]
    flags = repeated_ngrams(y, n)
    frac = float(flags.any(1).float().mean())
    if not bool(flags.any()):
        return enc.sum() * 0.0, frac
    labels = y.masked_fill(y == t5.config.pad_token_id, -100)
    dec = t5.decoder(input_ids=t5._shift_right(labels), encoder_hidden_states=enc,
                     encoder_attention_mask=mask).last_hidden_state
    p = torch.softmax(head(dec).float(), dim=-1).gather(2, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    terms = -torch.log((1.0 - p).clamp(min=1e-5)) * flags
    return terms.sum() / (labels != -100).sum().clamp(min=1), frac


def repeated_ngrams(ids: torch.Tensor, n: int = 4) -> torch.Tensor:
    """[B, T] bool: the tokens of every n-gram of a row that already occurred earlier in that
    row (overlaps count: "a a a a a" repeats from its second 4-gram on). Pad (0) ends a row."""
    rows = ids.tolist()
    out = torch.zeros(ids.shape, dtype=torch.bool)
    for b, row in enumerate(rows):
        end = row.index(0) if 0 in row else len(row)
        seen = set()
        for t in range(n - 1, end):
            g = tuple(row[t - n + 1:t + 1])
            if g in seen:
                out[b, t - n + 1:t + 1] = True
            seen.add(g)
    return out.to(ids.device)


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

    def forward(self, target, hyp_emb, hyp_ids, labels, unlikelihood: float = 0.0, seq_unlikelihood: float = 0.0,
                seq_rows: float = 0.25) -> torch.Tensor:
        """The token cross-entropy of the target, plus `unlikelihood` times the token-level
        unlikelihood loss (see unlikelihood_loss), plus `seq_unlikelihood` times the
        sequence-level one on the greedy corrections of the batch's first `seq_rows` fraction
        (see InversionModule.sequence_unlikelihood); the parts in `last_parts`."""
        x, mask = self.encoder_inputs(target, hyp_emb, hyp_ids)
        t5 = self.encoder_decoder
        if self.copy_gate is None:
            out = t5(inputs_embeds=x, attention_mask=mask, labels=labels)
            loss, logits, enc = out.loss, out.logits, out.encoder_last_hidden_state
        else:
            enc = t5.encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
            dec = t5.decoder(input_ids=t5._shift_right(labels), encoder_hidden_states=enc,
                             encoder_attention_mask=mask).last_hidden_state
            logits = self.copy_logits(dec, hyp_ids)
            loss = nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                               ignore_index=-100)
        self.last_parts = {"ce": float(loss.detach())}
        if unlikelihood:
            ul = unlikelihood_loss(logits, labels)
            self.last_parts["ul"] = float(ul.detach())
            loss = loss + unlikelihood * ul
        if seq_unlikelihood:
            r = max(1, int(round(seq_rows * len(target))))
            was = self.training
            self.eval()
            ids = self.generate_greedy(target[:r], hyp_emb[:r], hyp_ids[:r], max_length=labels.shape[1] + 1)
            self.train(was)
            h = hyp_ids[:r]
            sul, frac = _repeat_unlikelihood(
                t5, ids, enc[:r], mask[:r], 4,
                (lambda dec: self.copy_logits(dec, h)) if self.copy_gate is not None
                else (lambda dec: t5.lm_head(dec * (self.d_model ** -0.5) if t5.config.tie_word_embeddings else dec)))
            self.last_parts["seq_ul"] = float(sul.detach())
            self.last_parts["repeats"] = frac
            loss = loss + seq_unlikelihood * sul
        return loss

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
