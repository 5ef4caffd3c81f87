"""The reference side of the vec2text parity tests: the real vec2text 0.0.13 package, offline.

vec2text loads everything by name from the model hub. This module builds tiny random stand-ins
in a local directory, patches the two hub calls vec2text makes while constructing its objects
(the embedder loader and `evaluate.load`), saves vec2text checkpoints, loads them back with
vec2text's own `from_pretrained`, and hands out the real `vec2text.trainers.Corrector` built by
`vec2text.api.load_corrector`. Its `invert_embeddings` is the reference that vec2text_c must
match string for string. Nothing here is a test; tests import it. Python only, no C.

API
---
build_reference(kind, tmp_dir) -> (inversion_dir, corrector_dir, corrector)   kind "gtr"|"bert"
reference_artifacts(kind, tmp_dir) -> ReferenceArtifacts: every path below, the embedder name,
    the corrector. Built once per tmp_dir (marker files) and cached per process.
reference_invert(corrector, embeddings, num_steps, sequence_beam_width, trace=None) -> list[str]
    vec2text.api.invert_embeddings; `trace` collects the step-0 hypothesis, every raw beam
    search output and what each round kept (see the function).
reference_grid(artifacts, embeddings, grid=GRID) -> {(num_steps, width): (texts, trace)} for
    num_steps None, 0, 1, 3 x width 0, 2, 4 (None only with 0), computed once per process.
reference_invert_strings(corrector, strings, num_steps, sequence_beam_width) -> list[str]
reference_embed(corrector, texts) -> [N, 768]: the target embeddings invert_strings computes
    (<= 128 tokens, padded to 128); hypothesis=True: Corrector.embed_generated_hypothesis on
    these texts (truncated at the corrector's max_seq_length 32, padded to 32).
reference_embed_ids(corrector, ids) -> [N, 768]: embed_generated_hypothesis on token ids.
reference_inverter_inputs(corrector, embeddings) -> [B, 16, 64]: embedding_transform(e) reshaped,
    the inverter's T5 encoder inputs (mask all ones).
reference_hypotheses(corrector, embeddings) -> {"ids" [B, <=32], "attention_mask",
    "hypothesis_embedding" [B, 768]}: the loop's step-0 hypothesis.
reference_corrector_inputs(corrector, embeddings, hypothesis_embeddings, hypothesis_ids,
    hypothesis_attention_mask=None) -> (inputs_embeds [B, 52+L, 64], attention_mask [B, 52+L])
    CorrectorEncoderModel.get_encoder_embedding (after the LayerNorm).
torch_cpu_topk_order(values) -> the index order torch.topk(k=n) gives on CPU, ties included.
read_sentences(data_dir=None), tensor_names(checkpoint_dir), torch_threads(n),
offline_vec2text(cwd) (the patches as a context manager), LocalSacreBleu (what
evaluate.load("sacrebleu") computes).
Every reference_* call runs PyTorch single-threaded (fixed reduction order on every machine,
and much faster than two threads on two shared cores); outputs are deterministic.

Built artifacts (under tmp_dir)
-------------------------------
t5_tokenizer/   T5 tokenizer from a SentencePiece unigram model trained on the fly (300 pieces,
                pad 0, eos 1, unk 2, no bos, nmt_nfkc) on the first 2000 sentences of
                read_sentences(), plus 4 sentinels <extra_id_3..0> = ids 300..303 (<extra_id_0>
                last, as in t5-base): 304 ids. Files: spiece.model, tokenizer.json (the layout of
                the hub's t5-base file: Precompiled(charsmap) normaliser, WhitespaceSplit +
                Metaspace("▁", prepend always) pre-tokeniser, Unigram(unk 2), TemplateProcessing
                "$A </s>", Metaspace decoder; assembled without protobuf, the charsmap is read
                from the model proto), tokenizer_config.json (T5Tokenizer, extra_ids 4,
                clean_up_tokenization_spaces false = the 4.46.3 default), special_tokens_map.json.
                vec2text's AutoTokenizer loads it as T5TokenizerFast; ids equal the slow
                SentencePiece tokenizer's.
t5_inverter/,   tiny T5ForConditionalGeneration, t5-base layout (v1.0: ReLU FFN, tied word
t5_corrector/   embeddings with the d_model^-0.5 output scale, 32 relative buckets, max distance
                128, eps 1e-6): d_model 64, d_kv 16, 4 heads, d_ff 128, 2 encoder + 2 decoder
                layers, vocab 304 (= tokenizer); config.json, generation_config.json (start 0,
                eos 1, pad 0), model.safetensors, tokenizer files. These are the checkpoints'
                `model_name_or_path`: the T5 architecture and the tokenizer come from here, the
                weights do NOT (every encoder-decoder tensor is multiplied by 1 + 0.05 N(0,1)
                before the vec2text checkpoint is saved, so a loader reading weights from here
                fails parity). Random weights: transformers' T5 init with initializer_factor 2,
                RMSNorm weights U[0.5, 1.5), decoder final RMSNorm weight N(0, 1) (signed: it
                removes the pull of tied embeddings towards repeating the input token), the
                `</s>` embedding row x3, and two "length heads" (see _install_length_heads)
                that force `</s>` at decoder position 40: texts are at most 40 tokens, so the
                step-0 hypothesis (max 32) is sometimes cut without `</s>`, correction rounds
                produce rows longer than 32, and beam searches never run to 128 tokens.
embedder_gtr/   GTR-style embedder: T5EncoderModel, d_model 768, 1 layer, 4 heads x d_kv 16,
                d_ff 64, ReLU, RMSNorm weights U[0.5, 1.5), the tokenizer above. vec2text
                recipe `gtr_base`: T5 encoder -> mean of the final hidden states over the
                attention mask; no Dense, no normalisation. model.safetensors holds shared.weight
                [304, 768] and encoder.* (encoder.embed_tokens aliases shared and is not
                written), the layout of the hub's sentence-transformers/gtr-t5-base weights.
embedder_bert/  BERT-style embedder, a sentence-transformers directory: the root holds the
                Transformer module (BertModel: 1 layer, hidden 768, 12 heads, intermediate 64,
                128 positions, GELU, LayerNorm weights U[0.5, 1.5) and biases N(0, 0.1^2);
                lower-casing WordPiece vocab.txt of 400 entries trained on the same sentences;
                sentence_bert_config.json max_seq_length 128), 1_Pooling (mean), 2_Normalize,
                modules.json. Root model.safetensors: BertModel names without prefix
                (embeddings.*, encoder.layer.0.*, pooler.dense.*), as all-MiniLM-L6-v2's.
                vec2text runs it as a SentenceTransformer (sentence_embedding).
                (embedder_bert_hf/ is the plain BERT directory it was assembled from.)
inversion_<kind>/, corrector_<kind>/   the vec2text checkpoints (config.json + model.safetensors)
tmp_trainer/    created by transformers.Trainer inside tmp_dir (never in the caller's cwd)

Embedder names written into the checkpoints: kind "gtr" -> `gtr_base` (the real name; the
patched loader maps it to embedder_gtr/); kind "bert" ->
`sentence-transformers/v2t-test-tiny-bert-768` (goes through vec2text's SentenceTransformer
branch; mapped to embedder_bert/). Any other name raises instead of reaching the hub.

Checkpoint contents: exactly what PreTrainedModel.save_pretrained(safe_serialization=True)
writes for these classes, all float32
-------------------------------------------------------------------------------------------
config.json: architectures ["InversionModel"] | ["CorrectorEncoderModel"], model_name_or_path
    (absolute path of t5_inverter/ | t5_corrector/), embedder_model_name, embedder_model_api
    null, embedder_torch_dtype "float32", embedder_no_grad true, embedder_fake_with_zeros false,
    embedder_gaussian_noise_level 0.0, embeddings_from_layer_n null,
    use_frozen_embeddings_as_input false, encoder_dropout_disabled false,
    decoder_dropout_disabled false, use_lora false, freeze_strategy "none",
    num_repeat_tokens 16, max_seq_length 32, corrector_ignore_hypothesis_embedding false,
    plus torch_dtype and transformers_version. Which config is read where: the inverter's
    num_repeat_tokens shapes its MLP; the CORRECTOR's max_seq_length sets both the step-0
    hypothesis length and the truncation of re-embedded hypotheses.
InversionModel model.safetensors:
    embedding_transform.0.weight [768, 768], embedding_transform.0.bias [768]
    embedding_transform.3.weight [16*64, 768], embedding_transform.3.bias [1024]
        (Linear -> Dropout -> GELU(erf) -> Linear; output row-major [16, 64])
    encoder_decoder.shared.weight [304, 64]: the only copy of the tied word embedding;
        encoder_decoder.{encoder,decoder}.embed_tokens.weight and encoder_decoder.lm_head.weight
        alias it and are not written
    encoder_decoder.encoder.block.{0,1}.layer.0.SelfAttention.{q,k,v,o}.weight, .layer.0.layer_norm.weight
    encoder_decoder.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight [32, 4]
    encoder_decoder.encoder.block.{0,1}.layer.1.DenseReluDense.{wi,wo}.weight, .layer.1.layer_norm.weight
    encoder_decoder.encoder.final_layer_norm.weight
    encoder_decoder.decoder.block.{0,1}.layer.0.SelfAttention.{q,k,v,o}.weight (+ block.0's
        relative_attention_bias), .layer.0.layer_norm.weight
    encoder_decoder.decoder.block.{0,1}.layer.1.EncDecAttention.{q,k,v,o}.weight, .layer.1.layer_norm.weight
    encoder_decoder.decoder.block.{0,1}.layer.2.DenseReluDense.{wi,wo}.weight, .layer.2.layer_norm.weight
    encoder_decoder.decoder.final_layer_norm.weight
    embedder.*: the embedder is a submodule, so its weights are saved too:
        gtr: embedder.embed_tokens.weight, embedder.block.0.layer.{0,1}...., embedder.final_layer_norm.weight
        bert: embedder.0.auto_model.embeddings.*, embedder.0.auto_model.encoder.layer.0.*,
              embedder.0.auto_model.pooler.dense.* (unused by mean pooling)
CorrectorEncoderModel model.safetensors:
    embedding_transform_{1,2,3}.{0,3}.{weight,bias} (shapes as above; _1 takes the target
        embedding e, _2 the difference e - e_hat, _3 the hypothesis embedding e_hat)
    layernorm.weight [64], layernorm.bias [64] (U[0.5, 1.5) and N(0, 0.2^2), not ones/zeros)
    encoder_decoder.* as above; no embedder.
Encoder input of the corrector: LayerNorm(eps 1e-5) over every row of
    [S, T1(e), S, T3(e_hat), S, T2(e - e_hat), S, shared[hypothesis ids]], S = shared[1] (</s>);
    mask = 4 + 3*16 ones, then hypothesis_ids != 0.
MLP weights (fixed seeds, scaled from the embedder's own vectors of 64 real sentences so that
different embeddings give different texts): first Linear N(0, 1/s^2) with bias
0.1 N(0,1) - W mu (centres the embeddings; s = RMS distance to the mean mu; for the difference
MLP no centring and s = RMS distance between two embeddings), second Linear N(0, 1/(0.42*768))
and bias 0.1 N(0, 1).

Quirks of the reference (each pinned by a test in tests/test_v2t_reference.py)
----------------------------------------------------------------------------
* invert_embeddings puts max_length 128 into the generation kwargs it also hands to the
  corrector: every correction round may generate 128 tokens. Only the step-0 hypothesis is
  capped, at the corrector's max_seq_length. Re-embedding truncates candidates at 32 tokens,
  but the ids fed back as the next hypothesis are the full generated rows.
* num_steps=0 and num_steps=1 are the same computation; exactly `steps` rounds always run
  (the early-stop check never fires); sequence_beam_width 0 means greedy rounds, no selection.
* Sequence-level beam search sorts candidates with scores.topk(k=all), which on CPU is
  libstdc++'s nth_element + sort: NOT stable, so equal cosines come out in an order that
  depends on the whole vector (torch_cpu_topk_order reproduces it exactly). It matters only when
  two different token rows decode to the same text (e.g. rows differing in special tokens that
  skip_special_tokens drops); identical rows from different parents are common in rounds >= 1
  and their order does not change which texts are kept. No such tie occurs in the default grid.
* Fewer than sequence_beam_width distinct rows for an example in a non-final round makes
  `torch.tensor(best_idx_in_beam)` raise ValueError (ragged lists). transformers' beam search
  returns distinct rows per input row, so invert_embeddings cannot reach it; the test drives
  `_generate_with_beam` with a stubbed generate to show it.
* A 1-D embedding raises AssertionError; an empty batch raises RuntimeError (reshape);
  num_steps None with a beam width raises AssertionError.
* The fast T5 tokenizer vec2text decodes with drops special and out-of-range ids, and keeps a
  leading space when a text starts with the bare "▁" piece (SentencePiece's decode strips it).
* transformers.Trainer (built by load_corrector) creates ./tmp_trainer and reseeds the global
  RNGs; importing vec2text turns torch's dynamo logging up to INFO. The harness builds inside
  tmp_dir, restores the RNG states and turns the logging back down.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("V2T_SHARED_DATA", REPO.parent / "shared" / "data"))

GTR_EMBEDDER_NAME = "gtr_base"
BERT_EMBEDDER_NAME = "sentence-transformers/v2t-test-tiny-bert-768"
KINDS = ("gtr", "bert")

SPM_VOCAB_SIZE = 300
EXTRA_IDS = 4
WORDPIECE_VOCAB_SIZE = 400
EMBEDDER_DIM = 768  # CorrectorEncoderModel hard-codes 768 for a non-API embedder
NUM_REPEAT_TOKENS = 16
MAX_SEQ_LENGTH = 32
T5_TINY = {
    "t5_inverter": dict(d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2, num_decoder_layers=2),
    "t5_corrector": dict(d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2, num_decoder_layers=2),
}
# `</s>` embedding row scale: makes the end of text likely enough that texts end at varied
# lengths (the corrector's louder, so that its beam searches rarely run to 128 tokens)
EOS_ROW_SCALE = {"t5_inverter": 3.0, "t5_corrector": 3.0}
# decoder length (in tokens) at which the length heads force `</s>` (see _install_length_heads)
END_AT = {"t5_inverter": 40, "t5_corrector": 40}
T5_INIT_FACTOR = 2.0  # transformers' T5 initializer_factor for the tiny encoder-decoders

SEEDS = {
    "t5_inverter": 11,
    "t5_corrector": 12,
    "embedder_gtr": 21,
    "embedder_bert": 22,
    "inversion": 31,
    "corrector": 32,
}


REFERENCE_THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int = REFERENCE_THREADS):
    """Run PyTorch with `n` intra-op threads (restored afterwards). The reference always runs
    single-threaded: reductions then have one fixed order on every machine, and on two shared
    cores one thread is also much faster than two."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _single_threaded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch_threads():
            return fn(*args, **kwargs)

    return wrapper


def _vec2text():
    """Import vec2text. Its `experiments` module turns torch's dynamo logs up to INFO at import
    time (noise at interpreter exit); put them back to warnings."""
    import logging

    import torch
    import vec2text

    torch._logging.set_logs(dynamo=logging.WARNING)
    return vec2text


# --------------------------------------------------------------------------------------------
# Real sentences
# --------------------------------------------------------------------------------------------


def _sick(data: Path) -> list[str]:
    out = []
    with open(data / "sick" / "SICK.txt", encoding="utf-8") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            out += [parts[1], parts[2]]
    return out


def _stsb(data: Path) -> list[str]:
    out = []
    with open(data / "stsb" / "sts-train.csv", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 7:
                out += [parts[5], parts[6]]
    return out


def _nq(data: Path) -> list[str]:
    out = []
    with open(data / "nq_open" / "NQ-open.dev.jsonl", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["question"])
    return out


def _msrp(data: Path) -> list[str]:
    out = []
    with open(data / "msrp" / "msr_paraphrase_train.txt", encoding="utf-8-sig") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 5:
                out += [parts[3], parts[4]]
    return out


@functools.lru_cache(maxsize=4)
def _read_sentences(data_dir: str) -> tuple[str, ...]:
    data = Path(data_dir)
    if not data.is_dir():
        raise FileNotFoundError(
            f"the real corpora are expected at {data} (set V2T_SHARED_DATA to their folder)"
        )
    sources = [_sick(data), _stsb(data), _nq(data), _msrp(data)]
    seen: dict[str, None] = {}
    for i in range(max(len(s) for s in sources)):
        for s in sources:
            if i < len(s):
                text = s[i].strip()
                if text:
                    seen.setdefault(text, None)
    return tuple(seen)


def read_sentences(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Unique real sentences in a fixed order, interleaving SICK, STS-B, NQ-open and MSRP."""
    return list(_read_sentences(str(Path(data_dir or SHARED_DATA).resolve())))


def _training_sentences(data_dir) -> list[str]:
    return read_sentences(data_dir)[:2000]


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _proto_fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) pairs of a serialised protobuf message (wire types 0, 1, 2, 5)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def precompiled_charsmap(model_proto: bytes) -> bytes:
    """ModelProto.normalizer_spec (field 3) .precompiled_charsmap (field 2)."""
    for number, value in _proto_fields(model_proto):
        if number == 3:
            for inner, payload in _proto_fields(value):
                if inner == 2:
                    return bytes(payload)
    return b""


def train_sentencepiece(sentences: Sequence[str], vocab_size: int = SPM_VOCAB_SIZE) -> bytes:
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return buf.getvalue()


def build_t5_tokenizer(out_dir: Path, sentences: Sequence[str], extra_ids: int = EXTRA_IDS) -> Path:
    """A T5TokenizerFast directory (spiece.model + tokenizer.json) trained on `sentences`."""
    import sentencepiece as spm
    import transformers
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proto = train_sentencepiece(sentences)
    (out_dir / "spiece.model").write_bytes(proto)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in range(extra_ids - 1, -1, -1)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=sp.unk_id(), byte_fallback=False))
    tok.normalizer = normalizers.Precompiled(precompiled_charsmap(proto))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    fast = transformers.T5TokenizerFast(
        tokenizer_object=tok,
        vocab_file=str(out_dir / "spiece.model"),
        extra_ids=extra_ids,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.save_pretrained(str(out_dir))
    return out_dir


def _copy_tokenizer_files(src: Path, dst: Path) -> None:
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (dst / name).write_bytes((src / name).read_bytes())


def build_wordpiece_vocab(sentences: Sequence[str], vocab_size: int = WORDPIECE_VOCAB_SIZE) -> list[str]:
    """A lower-casing WordPiece vocabulary: the 5 BERT specials, every character seen (and its
    "##" continuation), then the most frequent words (count descending, then alphabetical).
    Built by counting rather than with the `tokenizers` trainer, whose result changes from one
    process to the next (hash-map order breaks its frequency ties)."""
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    split = pre_tokenizers.BertPreTokenizer()
    words: Counter = Counter()
    for text in sentences:
        words.update(w for w, _ in split.pre_tokenize_str(norm.normalize_str(text)))
    chars: Counter = Counter()
    for w, n in words.items():
        for ch in w:
            chars[ch] += n
    alphabet = sorted(c for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:100])
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + alphabet + ["##" + c for c in alphabet]
    seen = set(vocab)
    for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= vocab_size:
            break
        if w not in seen:
            vocab.append(w)
            seen.add(w)
    return vocab


# --------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------


def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _causal_bucket(distance: int) -> int:
    """transformers' decoder (causal) relative-position bucket of `distance` >= 0 (32 buckets,
    max distance 128), evaluated by transformers itself."""
    import torch
    import transformers

    bucket = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket(
        torch.tensor([-distance]), bidirectional=False, num_buckets=32, max_distance=128
    )
    return int(bucket[0])


def _install_length_heads(model, min_distance: int, push: float) -> int:
    """Make a random T5 decoder end its text once it is about `min_distance` tokens long.

    Random decoders fall into loops and beam search then runs every row to max_length (slow,
    and unlike a trained model). In decoder layer 0 the last two heads become content-free
    (zero query weights) and read one reserved model coordinate `c`, which is non-zero only in
    the embedding row of the decoder start token (id 0). Head B has no position bias and
    attends uniformly to the whole prefix; head A has the same zero bias for distances below
    the bucket of `min_distance` and +30 from that bucket on, so it attends to the start token
    alone once the text reaches that length. Their value coordinates are mapped by `o` to
    +push*u and -push*u, u the direction that raises the `</s>` logit: the two cancel exactly
    before that length and push `</s>` to the top at it. The final RMSNorm weight of coordinate
    c is 0 so the reserved coordinate never reaches the logits. Exercises the log-spaced
    relative-position buckets (distances >= 16). Returns the distance at which `</s>` is forced.
    """
    import torch

    cfg = model.config
    d, h, dk = cfg.d_model, cfg.num_heads, cfg.d_kv
    if h < 3:
        raise ValueError("the length heads need at least 3 decoder heads")
    c = d - 1
    head_a, head_b = h - 2, h - 1
    bucket = _causal_bucket(min_distance)
    forced_at = min(n for n in range(129) if _causal_bucket(n) >= bucket)
    with torch.no_grad():
        shared = model.shared.weight
        shared[:, c] = 0.0
        shared[0, c] = 8.0
        final = model.decoder.final_layer_norm.weight
        final[c] = 0.0
        u = final * shared[1]
        u[c] = 0.0
        u = u / u.norm()
        layer = model.decoder.block[0].layer[0]
        layer.layer_norm.weight[c] = 1.0
        attn = layer.SelfAttention
        for head in (head_a, head_b):
            rows = slice(head * dk, (head + 1) * dk)
            attn.q.weight[rows] = 0.0
            attn.v.weight[rows] = 0.0
            attn.v.weight[head * dk, c] = 1.0
            attn.o.weight[:, rows] = 0.0
        attn.o.weight[:, head_a * dk] = push * u
        attn.o.weight[:, head_b * dk] = -push * u
        table = attn.relative_attention_bias.weight  # [32 buckets, heads]
        table[:, head_a] = 0.0
        table[bucket:, head_a] = 30.0
        table[:, head_b] = 0.0
    return forced_at


def build_t5(
    out_dir: Path,
    tokenizer_dir: Path,
    seed: int,
    eos_scale: float,
    end_at: int,
    **overrides,
) -> Path:
    """A tiny random T5ForConditionalGeneration in the t5-base (v1.0) layout."""
    import torch
    import transformers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = transformers.T5Config(
        vocab_size=len(tok),
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        initializer_factor=T5_INIT_FACTOR,
        **overrides,
    )
    gen = _seeded(seed)
    model = transformers.T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        # RMSNorm weights in [0.5, 1.5) instead of ones; a signed decoder final norm (removes
        # the pull of tied embeddings towards repeating the input token); a louder </s> row
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
        final = model.decoder.final_layer_norm.weight
        final.copy_(torch.randn(final.shape, generator=gen))
        model.shared.weight[1].mul_(eos_scale)
    _install_length_heads(model, end_at, push=20.0)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    _copy_tokenizer_files(Path(tokenizer_dir), out_dir)
    return out_dir


def build_gtr_embedder(out_dir: Path, tokenizer_dir: Path, seed: int) -> Path:
    import torch
    import transformers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = transformers.T5Config(
        vocab_size=len(tok),
        d_model=EMBEDDER_DIM,
        d_kv=16,
        num_heads=4,
        d_ff=64,
        num_layers=1,
        feed_forward_proj="relu",
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    gen = _seeded(seed)
    model = transformers.T5EncoderModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
    model.save_pretrained(str(out_dir), safe_serialization=True)
    _copy_tokenizer_files(Path(tokenizer_dir), out_dir)
    return out_dir


def build_bert_embedder(out_dir: Path, sentences: Sequence[str], seed: int) -> Path:
    """A sentence-transformers directory: 1-layer BERT (hidden 768) + mean pooling + Normalize."""
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models

    out_dir = Path(out_dir)
    hf_dir = out_dir.parent / (out_dir.name + "_hf")
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_wordpiece_vocab(sentences)
    (hf_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = transformers.BertTokenizerFast(vocab_file=str(hf_dir / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(str(hf_dir))
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=EMBEDDER_DIM,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_act="gelu",
        type_vocab_size=2,
        pad_token_id=0,
    )
    gen = _seeded(seed)
    model = transformers.BertModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                if name.endswith("weight"):
                    p.copy_(0.5 + torch.rand(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    st = SentenceTransformer(
        modules=[
            st_models.Transformer(str(hf_dir), max_seq_length=128),
            st_models.Pooling(EMBEDDER_DIM, pooling_mode="mean"),
            st_models.Normalize(),
        ],
        device="cpu",
    )
    st.save(str(out_dir))
    return out_dir


# --------------------------------------------------------------------------------------------
# Running vec2text offline
# --------------------------------------------------------------------------------------------


class LocalSacreBleu:
    """What `evaluate.load("sacrebleu").compute` does: `sacrebleu.corpus_bleu` over the given
    predictions with smooth_method "exp", smooth_value None, force False, lowercase False,
    default tokenizer (13a) and use_effective_order False; a bare string reference is wrapped
    into a one-reference list."""

    def compute(self, predictions, references):
        import sacrebleu

        if isinstance(references[0], str):
            references = [[r] for r in references]
        n_refs = len(references[0])
        if any(len(r) != n_refs for r in references):
            raise ValueError("Sacrebleu requires the same number of references for each prediction")
        transformed = [[refs[i] for refs in references] for i in range(n_refs)]
        out = sacrebleu.corpus_bleu(
            predictions,
            transformed,
            smooth_method="exp",
            smooth_value=None,
            force=False,
            lowercase=False,
            use_effective_order=False,
        )
        return {
            "score": out.score,
            "counts": out.counts,
            "totals": out.totals,
            "precisions": out.precisions,
            "bp": out.bp,
            "sys_len": out.sys_len,
            "ref_len": out.ref_len,
        }


class LocalAccuracy:
    def compute(self, predictions, references):
        p, r = np.asarray(predictions), np.asarray(references)
        return {"accuracy": float((p == r).mean())}


class LocalRouge:
    """Stand-in for evaluate's rouge: mean per-example ROUGE-1 F (no bootstrap). Only present
    because `_text_comparison_metrics` calls it; no parity claim rests on it."""

    def compute(self, predictions, references):
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
        f = [scorer.score(r, p)["rouge1"].fmeasure for p, r in zip(predictions, references)]
        return {"rouge1": float(np.mean(f)) if f else 0.0}


def _local_metric(name, *args, **kwargs):
    table = {"sacrebleu": LocalSacreBleu, "accuracy": LocalAccuracy, "rouge": LocalRouge}
    if name not in table:
        raise ValueError(f"no offline stand-in for evaluate metric {name!r}")
    return table[name]()


_EMBEDDERS: dict[str, tuple[str, Path]] = {}


def _load_local_embedder(name: str, torch_dtype: str = "float32", **kwargs):
    """Replacement for vec2text.models.model_utils.load_embedder_and_tokenizer: the same objects
    vec2text builds for `gtr_base` (T5 encoder stack + tokenizer) and for a
    `sentence-transformers/...` name (SentenceTransformer + its tokenizer), from local dirs."""
    import transformers
    from sentence_transformers import SentenceTransformer

    if name not in _EMBEDDERS:
        raise ValueError(
            f"offline vec2text: no local embedder registered for {name!r} "
            f"(registered: {sorted(_EMBEDDERS)}); the model hub is never contacted"
        )
    kind, path = _EMBEDDERS[name]
    if kind == "gtr":
        model = transformers.T5EncoderModel.from_pretrained(
            str(path), low_cpu_mem_usage=True, output_hidden_states=False
        ).encoder
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        return model, tokenizer
    model = SentenceTransformer(str(path), device="cpu")
    return model, model.tokenizer


def register_embedder(name: str, kind: str, path: Path) -> None:
    _EMBEDDERS[name] = (kind, Path(path))


@contextlib.contextmanager
def offline_vec2text(cwd: Path | None = None):
    """Patch the embedder loader everywhere vec2text imported it by name, and evaluate.load.
    With `cwd`, also run inside that directory (transformers.Trainer creates ./tmp_trainer)."""
    import evaluate
    import vec2text.models as v2t_models
    from vec2text.models import (
        inversion,
        inversion_bow,
        inversion_decoder,
        inversion_na,
        model_utils,
    )

    with contextlib.ExitStack() as stack:
        for module in (model_utils, v2t_models, inversion, inversion_bow, inversion_decoder, inversion_na):
            if hasattr(module, "load_embedder_and_tokenizer"):
                stack.enter_context(
                    mock.patch.object(module, "load_embedder_and_tokenizer", _load_local_embedder)
                )
        stack.enter_context(mock.patch.object(evaluate, "load", _local_metric))
        if cwd is not None:
            old = os.getcwd()
            os.chdir(cwd)
            stack.callback(os.chdir, old)
        yield


@contextlib.contextmanager
def _preserve_global_rng():
    """transformers.Trainer.__init__ calls set_seed(42); keep the caller's RNG streams."""
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def inversion_config_fields(model_dir: Path, embedder_name: str) -> dict:
    return dict(
        model_name_or_path=str(Path(model_dir).resolve()),
        embedder_model_name=embedder_name,
        embedder_model_api=None,
        embedder_torch_dtype="float32",
        embedder_no_grad=True,
        embedder_fake_with_zeros=False,
        embedder_gaussian_noise_level=0.0,
        embeddings_from_layer_n=None,
        use_frozen_embeddings_as_input=False,
        encoder_dropout_disabled=False,
        decoder_dropout_disabled=False,
        use_lora=False,
        freeze_strategy="none",
        num_repeat_tokens=NUM_REPEAT_TOKENS,
        max_seq_length=MAX_SEQ_LENGTH,
        corrector_ignore_hypothesis_embedding=False,
    )


def _randomize_mlp(mlp, gen, center, scale) -> None:
    """mlp = Sequential(Linear(768, 768), Dropout, GELU, Linear(768, R*d)); see module docstring."""
    import torch

    first, last = mlp[0], mlp[3]
    with torch.no_grad():
        first.weight.copy_(torch.randn(first.weight.shape, generator=gen) / scale)
        bias = 0.1 * torch.randn(first.bias.shape, generator=gen)
        if center is not None:
            bias -= first.weight @ center
        first.bias.copy_(bias)
        fan_in = last.weight.shape[1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=gen) / np.sqrt(0.42 * fan_in))
        last.bias.copy_(0.1 * torch.randn(last.bias.shape, generator=gen))


def _perturb_encoder_decoder(model, gen) -> None:
    """Make the checkpoint's T5 weights differ from model_name_or_path's."""
    import torch

    with torch.no_grad():
        for p in model.encoder_decoder.parameters():
            p.mul_(1.0 + 0.05 * torch.randn(p.shape, generator=gen))


def _embedding_stats(inversion_model, sentences: Sequence[str]):
    """Mean, RMS distance to the mean, RMS pairwise distance of the embedder's vectors."""
    import torch

    tok = inversion_model.embedder_tokenizer
    enc = tok(list(sentences), max_length=128, truncation=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        e = inversion_model.call_embedding_model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    e = e.double()
    mu = e.mean(0)
    spread = (e - mu).norm(dim=1).pow(2).mean().sqrt().item()
    diff = (e[1:] - e[:-1]).norm(dim=1).pow(2).mean().sqrt().item()
    return mu.float(), spread, diff


@dataclass
class ReferenceArtifacts:
    kind: str
    root: Path
    tokenizer_dir: Path
    inverter_base_dir: Path
    corrector_base_dir: Path
    embedder_dir: Path
    embedder_name: str
    inversion_dir: Path
    corrector_dir: Path
    corrector: Any  # vec2text.trainers.Corrector


_CACHE: dict[tuple[str, str], ReferenceArtifacts] = {}


def _done(path: Path) -> bool:
    return (path / ".complete").exists()


def _mark(path: Path) -> None:
    (path / ".complete").write_text("ok\n")


def _build_shared(root: Path, data_dir) -> None:
    sentences = _training_sentences(data_dir)
    tok_dir = root / "t5_tokenizer"
    if not _done(tok_dir):
        build_t5_tokenizer(tok_dir, sentences)
        _mark(tok_dir)
    for name in ("t5_inverter", "t5_corrector"):
        if not _done(root / name):
            build_t5(root / name, tok_dir, SEEDS[name], EOS_ROW_SCALE[name], END_AT[name], **T5_TINY[name])
            _mark(root / name)


def _build_checkpoints(kind: str, root: Path, data_dir, embedder_dir: Path, name: str) -> None:
    vec2text = _vec2text()

    inv_dir, cor_dir = root / f"inversion_{kind}", root / f"corrector_{kind}"
    if _done(inv_dir) and _done(cor_dir):
        return
    calib = read_sentences(data_dir)[4000:4064]
    with offline_vec2text(cwd=root):
        gen = _seeded(SEEDS["inversion"] + (0 if kind == "gtr" else 100))
        cfg = vec2text.models.config.InversionConfig(**inversion_config_fields(root / "t5_inverter", name))
        inv = vec2text.models.InversionModel(cfg).eval()
        mu, spread, diff = _embedding_stats(inv, calib)
        _randomize_mlp(inv.embedding_transform, gen, mu, spread)
        _perturb_encoder_decoder(inv, gen)
        inv.save_pretrained(str(inv_dir), safe_serialization=True)
        _mark(inv_dir)

        gen = _seeded(SEEDS["corrector"] + (0 if kind == "gtr" else 100))
        cfg = vec2text.models.config.InversionConfig(**inversion_config_fields(root / "t5_corrector", name))
        cor = vec2text.models.CorrectorEncoderModel(cfg).eval()
        _randomize_mlp(cor.embedding_transform_1, gen, mu, spread)
        _randomize_mlp(cor.embedding_transform_2, gen, None, diff)
        _randomize_mlp(cor.embedding_transform_3, gen, mu, spread)
        import torch

        with torch.no_grad():
            cor.layernorm.weight.copy_(0.5 + torch.rand(cor.layernorm.weight.shape, generator=gen))
            cor.layernorm.bias.copy_(0.2 * torch.randn(cor.layernorm.bias.shape, generator=gen))
        _perturb_encoder_decoder(cor, gen)
        cor.save_pretrained(str(cor_dir), safe_serialization=True)
        _mark(cor_dir)


def load_reference_corrector(inversion_dir: Path, corrector_dir: Path, cwd: Path):
    """vec2text's own from_pretrained on the saved directories, then vec2text.api.load_corrector."""
    vec2text = _vec2text()

    with offline_vec2text(cwd=cwd), _preserve_global_rng():
        inv = vec2text.models.InversionModel.from_pretrained(str(inversion_dir))
        cor = vec2text.models.CorrectorEncoderModel.from_pretrained(str(corrector_dir))
        corrector = vec2text.api.load_corrector(inv, cor)
    corrector.inversion_trainer.model.eval()
    corrector.model.eval()
    return corrector


@_single_threaded
def reference_artifacts(kind: str, tmp_dir, data_dir=None) -> ReferenceArtifacts:
    """Build (or reuse, when already built in `tmp_dir`) everything for one embedder kind."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    root = Path(tmp_dir).resolve()
    key = (kind, str(root))
    if key in _CACHE:
        return _CACHE[key]
    root.mkdir(parents=True, exist_ok=True)
    _build_shared(root, data_dir)
    embedder_dir = root / f"embedder_{kind}"
    if kind == "gtr":
        name = GTR_EMBEDDER_NAME
        if not _done(embedder_dir):
            build_gtr_embedder(embedder_dir, root / "t5_tokenizer", SEEDS["embedder_gtr"])
            _mark(embedder_dir)
    else:
        name = BERT_EMBEDDER_NAME
        if not _done(embedder_dir):
            build_bert_embedder(embedder_dir, _training_sentences(data_dir), SEEDS["embedder_bert"])
            _mark(embedder_dir)
    register_embedder(name, kind, embedder_dir)
    _build_checkpoints(kind, root, data_dir, embedder_dir, name)
    inv_dir, cor_dir = root / f"inversion_{kind}", root / f"corrector_{kind}"
    corrector = load_reference_corrector(inv_dir, cor_dir, root)
    art = ReferenceArtifacts(
        kind=kind,
        root=root,
        tokenizer_dir=root / "t5_tokenizer",
        inverter_base_dir=root / "t5_inverter",
        corrector_base_dir=root / "t5_corrector",
        embedder_dir=embedder_dir,
        embedder_name=name,
        inversion_dir=inv_dir,
        corrector_dir=cor_dir,
        corrector=corrector,
    )
    _CACHE[key] = art
    return art


def build_reference(kind: str, tmp_dir, data_dir=None):
    """(inversion_dir, corrector_dir, corrector) for kind "gtr" or "bert"."""
    art = reference_artifacts(kind, tmp_dir, data_dir)
    return art.inversion_dir, art.corrector_dir, art.corrector


def tensor_names(checkpoint_dir) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(Path(checkpoint_dir) / "model.safetensors"), framework="np") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


# --------------------------------------------------------------------------------------------
# torch.topk's order for ties
# --------------------------------------------------------------------------------------------


def torch_cpu_topk_order(values: Sequence[float]) -> list[int]:
    """The index order of `torch.tensor(values).topk(k=len(values))` on CPU (largest, sorted),
    ties included: what the sequence-level beam search of vec2text sorts its candidates with.

    PyTorch's CPU kernel (aten/src/ATen/native/TopKImpl.h) fills (value, index) pairs and, for
    k*64 > n (always so here, k == n), runs libstdc++'s std::nth_element(first, first+k-1,
    last, greater) and then std::sort(first, first+k-1, greater), with `greater` = "x is NaN
    and y is not, or x > y". Neither is stable, so equal values come out in the order these
    two algorithms leave them. This is a line-by-line port of the libstdc++ (GCC 12)
    algorithms, compared with torch.topk in tests/test_v2t_reference.py.
    """
    import math

    q = [(float(np.float32(v)), i) for i, v in enumerate(values)]
    n = len(q)
    if n == 0:
        return []

    def comp(x, y):
        return (math.isnan(x[0]) and not math.isnan(y[0])) or x[0] > y[0]

    def lg(m):
        return m.bit_length() - 1

    def move_median_to_first(result, a, b, c):
        if comp(q[a], q[b]):
            if comp(q[b], q[c]):
                q[result], q[b] = q[b], q[result]
            elif comp(q[a], q[c]):
                q[result], q[c] = q[c], q[result]
            else:
                q[result], q[a] = q[a], q[result]
        elif comp(q[a], q[c]):
            q[result], q[a] = q[a], q[result]
        elif comp(q[b], q[c]):
            q[result], q[c] = q[c], q[result]
        else:
            q[result], q[b] = q[b], q[result]

    def unguarded_partition(first, last, pivot):
        while True:
            while comp(q[first], q[pivot]):
                first += 1
            last -= 1
            while comp(q[pivot], q[last]):
                last -= 1
            if not first < last:
                return first
            q[first], q[last] = q[last], q[first]
            first += 1

    def unguarded_partition_pivot(first, last):
        mid = first + (last - first) // 2
        move_median_to_first(first, first + 1, mid, last - 1)
        return unguarded_partition(first + 1, last, first)

    def unguarded_linear_insert(last):
        val = q[last]
        nxt = last - 1
        while comp(val, q[nxt]):
            q[last] = q[nxt]
            last = nxt
            nxt -= 1
        q[last] = val

    def insertion_sort(first, last):
        if first == last:
            return
        for i in range(first + 1, last):
            if comp(q[i], q[first]):
                val = q[i]
                q[first + 1 : i + 1] = q[first:i]
                q[first] = val
            else:
                unguarded_linear_insert(i)

    def adjust_heap(first, hole, length, value):
        top = hole
        child = hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if comp(q[first + child], q[first + child - 1]):
                child -= 1
            q[first + hole] = q[first + child]
            hole = child
        if (length & 1) == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            q[first + hole] = q[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2
        while hole > top and comp(q[first + parent], value):
            q[first + hole] = q[first + parent]
            hole = parent
            parent = (hole - 1) // 2
        q[first + hole] = value

    def make_heap(first, last):
        length = last - first
        if length < 2:
            return
        parent = (length - 2) // 2
        while True:
            adjust_heap(first, parent, length, q[first + parent])
            if parent == 0:
                return
            parent -= 1

    def pop_heap(first, last, result):
        value = q[result]
        q[result] = q[first]
        adjust_heap(first, 0, last - first, value)

    def heap_select(first, middle, last):
        make_heap(first, middle)
        for i in range(middle, last):
            if comp(q[i], q[first]):
                pop_heap(first, middle, i)

    def sort_heap(first, last):
        while last - first > 1:
            last -= 1
            pop_heap(first, last, last)

    def introselect(first, nth, last, depth):
        while last - first > 3:
            if depth == 0:
                heap_select(first, nth + 1, last)
                q[first], q[nth] = q[nth], q[first]
                return
            depth -= 1
            cut = unguarded_partition_pivot(first, last)
            if cut <= nth:
                first = cut
            else:
                last = cut
        insertion_sort(first, last)

    def introsort_loop(first, last, depth):
        while last - first > 16:
            if depth == 0:
                heap_select(first, last, last)
                sort_heap(first, last)
                return
            depth -= 1
            cut = unguarded_partition_pivot(first, last)
            introsort_loop(cut, last, depth)
            last = cut

    def final_insertion_sort(first, last):
        if last - first > 16:
            insertion_sort(first, first + 16)
            for i in range(first + 16, last):
                unguarded_linear_insert(i)
        else:
            insertion_sort(first, last)

    k = n
    nth = k - 1
    if nth != n:
        introselect(0, nth, n, lg(n) * 2)
    end = k - 1
    if end > 0:
        introsort_loop(0, end, lg(end) * 2)
        final_insertion_sort(0, end)
    return [i for _, i in q[:k]]


# --------------------------------------------------------------------------------------------
# Calling the reference
# --------------------------------------------------------------------------------------------


def _as_tensor(x, dtype=None):
    import torch

    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        t = torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    return t.to(dtype) if dtype is not None else t


@_single_threaded
def reference_invert(corrector, embeddings, num_steps=None, sequence_beam_width=0, trace=None) -> list[str]:
    """`vec2text.api.invert_embeddings(embeddings, corrector, num_steps, sequence_beam_width)`.

    With a list as `trace`, the loop's intermediate results are appended to it, in order:
      {"stage": "hypothesis", "ids", "hypothesis_embedding"}  the step-0 hypothesis
      {"stage": "generate", "round", "ids"}  every row the corrector's beam search returned
          (input rows x num_return_sequences, example-major), before any selection
      {"stage": "round", "round", "ids", "hypothesis_embedding", "best_scores"}  what
          `Corrector._generate_with_beam` kept (best_scores None without selection)
    """
    import torch
    vec2text = _vec2text()

    emb = _as_tensor(embeddings, torch.float32)
    if trace is None:
        return vec2text.api.invert_embeddings(
            emb, corrector, num_steps=num_steps, sequence_beam_width=sequence_beam_width
        )
    orig_round = corrector._generate_with_beam
    orig_hyp = corrector._get_hypothesis_uncached
    orig_generate = corrector.model.generate
    state = {"round": 0}

    def np_(t):
        return None if t is None else t.detach().numpy().copy()

    def round_(*args, **kwargs):
        state["round"] = kwargs["num_recursive_steps_so_far"]
        ids, hyp_emb, best = orig_round(*args, **kwargs)
        trace.append(
            {
                "stage": "round",
                "round": state["round"],
                "ids": np_(ids),
                "hypothesis_embedding": np_(hyp_emb),
                "best_scores": np_(best),
            }
        )
        return ids, hyp_emb, best

    def generate_(*args, **kwargs):
        out = orig_generate(*args, **kwargs)
        trace.append({"stage": "generate", "round": state["round"], "ids": np_(out.sequences)})
        return out

    def hyp_(*args, **kwargs):
        out = orig_hyp(*args, **kwargs)
        trace.append({"stage": "hypothesis", "ids": np_(out[1]), "hypothesis_embedding": np_(out[3])})
        return out

    with mock.patch.object(corrector, "_generate_with_beam", round_), mock.patch.object(
        corrector, "_get_hypothesis_uncached", hyp_
    ), mock.patch.object(corrector.model, "generate", generate_):
        return vec2text.api.invert_embeddings(
            emb, corrector, num_steps=num_steps, sequence_beam_width=sequence_beam_width
        )


GRID = ((None, 0),) + tuple((n, b) for n in (0, 1, 3) for b in (0, 2, 4))
_GRID_CACHE: dict = {}


def reference_grid(art: ReferenceArtifacts, embeddings, grid=GRID) -> dict:
    """{(num_steps, sequence_beam_width): (texts, trace)} for every pair of `grid`, each run
    once per (artifacts, embeddings) in this process and then reused, so that several test
    files sharing one tmp_dir pay for the reference grid once."""
    import hashlib

    e = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32))
    key = (art.kind, str(art.root), hashlib.sha256(e.tobytes()).hexdigest(), e.shape)
    cached = _GRID_CACHE.setdefault(key, {})
    for num_steps, width in grid:
        if (num_steps, width) not in cached:
            trace: list = []
            texts = reference_invert(art.corrector, e, num_steps, width, trace=trace)
            cached[(num_steps, width)] = (texts, trace)
    return {k: cached[k] for k in grid}


@_single_threaded
def reference_invert_strings(corrector, strings, num_steps=None, sequence_beam_width=0) -> list[str]:
    vec2text = _vec2text()

    return vec2text.api.invert_strings(
        list(strings), corrector, num_steps=num_steps, sequence_beam_width=sequence_beam_width
    )


class _Captured(Exception):
    def __init__(self, embeddings):
        self.embeddings = embeddings


@_single_threaded
def reference_embed(corrector, texts: Sequence[str], hypothesis: bool = False) -> np.ndarray:
    """The embedder's vectors as vec2text computes them. hypothesis=False: the target embeddings
    of `vec2text.api.invert_strings` (tokenised to at most 128 tokens, padded to 128);
    hypothesis=True: `Corrector.embed_generated_hypothesis` on these texts (truncated at the
    corrector's max_seq_length, padded to it)."""
    vec2text = _vec2text()

    texts = list(texts)
    if not hypothesis:

        def capture(embeddings, **kwargs):
            raise _Captured(embeddings)

        try:
            with mock.patch.object(vec2text.api, "invert_embeddings", capture):
                vec2text.api.invert_strings(texts, corrector)
        except _Captured as c:
            return c.embeddings.detach().numpy().astype(np.float32)
        raise AssertionError("invert_strings did not reach invert_embeddings")

    class _Texts:
        def batch_decode(self, ids, skip_special_tokens=True):
            return texts

    import torch

    real = corrector.tokenizer
    corrector.tokenizer = _Texts()
    try:
        out = corrector.embed_generated_hypothesis(torch.zeros((len(texts), 1), dtype=torch.long))
    finally:
        corrector.tokenizer = real
    return out.detach().numpy().astype(np.float32)


@_single_threaded
def reference_embed_ids(corrector, ids) -> np.ndarray:
    """`Corrector.embed_generated_hypothesis(ids)`: decode with skip_special_tokens, re-embed."""
    import torch

    out = corrector.embed_generated_hypothesis(_as_tensor(ids, torch.long))
    return out.detach().numpy().astype(np.float32)


@_single_threaded
def reference_inverter_inputs(corrector, embeddings) -> np.ndarray:
    """The inverter's T5 encoder inputs: embedding_transform(e) reshaped to [B, R, d_model]."""
    import torch

    model = corrector.inversion_trainer.model
    with torch.no_grad():
        embeds, mask = model.embed_and_project(
            embedder_input_ids=None,
            embedder_attention_mask=None,
            frozen_embeddings=_as_tensor(embeddings, torch.float32),
        )
    assert bool((mask == 1).all())
    return embeds.numpy().astype(np.float32)


@_single_threaded
def reference_hypotheses(corrector, embeddings) -> dict:
    """The step-0 hypothesis of the correction loop (`Corrector._get_hypothesis_uncached`):
    greedy inverter output ids [B, <=max_seq_length] (leading decoder start 0, rows padded
    with 0), their mask (ids != 0) and their re-embedding [B, 768]."""
    import torch

    with torch.no_grad():
        _, ids, mask, emb = corrector._get_hypothesis_uncached(
            inputs={"frozen_embeddings": _as_tensor(embeddings, torch.float32)}
        )
    return {
        "ids": ids.numpy().astype(np.int64),
        "attention_mask": mask.numpy().astype(np.int64),
        "hypothesis_embedding": emb.numpy().astype(np.float32),
    }


@_single_threaded
def reference_corrector_inputs(
    corrector, embeddings, hypothesis_embeddings, hypothesis_ids, hypothesis_attention_mask=None
):
    """`CorrectorEncoderModel.get_encoder_embedding`: LayerNorm'd encoder inputs
    [B, 4 + 3R + L, d_model] and the attention mask [B, 4 + 3R + L]. The mask of the hypothesis
    part defaults to `hypothesis_ids != pad` as the loop computes it."""
    import torch

    model = corrector.model
    ids = _as_tensor(hypothesis_ids, torch.long)
    if hypothesis_attention_mask is None:
        mask = ids != model.encoder_decoder.config.pad_token_id
    else:
        mask = _as_tensor(hypothesis_attention_mask)
    with torch.no_grad():
        inputs_embeds, attention_mask = model.get_encoder_embedding(
            embedding=_as_tensor(embeddings, torch.float32),
            hypothesis_embedding=_as_tensor(hypothesis_embeddings, torch.float32),
            hypothesis_input_ids=ids,
            hypothesis_attention_mask=mask,
        )
    return inputs_embeds.numpy().astype(np.float32), attention_mask.numpy().astype(np.int64)
