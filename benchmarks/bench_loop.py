"""The whole vec2text correction loop: vec2text_c vs vec2text 0.0.13 on PyTorch CPU.

T5-base-shaped random-weight inverter and corrector (12+12 layers, d_model 768, 16 pseudo
tokens, max_seq_length 32) and a GTR-shaped embedder (random 12-layer T5-base encoder + masked
mean), built once into a cache folder with the offline helpers of tests/v2t_reference.py. The
tokenizer is a SentencePiece model trained on the shared corpora (the real t5-base vocabulary is
not available offline; --vocab sets its size). Both sides run in this process with the same
thread count, on the same embeddings; the strings must agree. Prints the ratio and where
vec2text_c's time goes (encoder, decoding, re-embedding, selection).

Usage: python benchmarks/bench_loop.py [--threads 2] [--n 8] [--steps 5] [--beam 4]
Random weights decide the generation lengths (up to 128 tokens per round); --eos-scale makes
</s> likelier so texts end at varied lengths. The reference side is slow on two cores: start
with --n 2 --steps 1 --beam 2 to see that everything works.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import T5_SHAPES, set_threads

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(1, str(REPO))


def build(root: Path, vocab: int, eos_scale: float) -> tuple[Path, Path, Path]:
    """(inversion_dir, corrector_dir, embedder_dir), built once under root."""
    import torch
    import transformers

    import v2t_reference as ref

    inv_dir, cor_dir, emb_dir = root / "inversion", root / "corrector", root / "embedder_gtr"
    if (cor_dir / ".complete").exists():
        return inv_dir, cor_dir, emb_dir
    root.mkdir(parents=True, exist_ok=True)
    tok_dir = root / "tokenizer"
    if not (tok_dir / ".complete").exists():
        sentences = ref.read_sentences()[:30000]
        train = ref.train_sentencepiece
        ref.train_sentencepiece = lambda s, vocab_size=vocab: train(s, vocab_size=vocab_size)
        try:
            ref.build_t5_tokenizer(tok_dir, sentences)
        finally:
            ref.train_sentencepiece = train
        (tok_dir / ".complete").write_text("ok")
    tok = transformers.AutoTokenizer.from_pretrained(str(tok_dir))
    shape = dict(T5_SHAPES["t5-base"])
    for seed, name in ((1, "t5_inverter"), (2, "t5_corrector")):
        d = root / name
        torch.manual_seed(seed)
        cfg = transformers.T5Config(vocab_size=len(tok), feed_forward_proj="relu", tie_word_embeddings=True,
                                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **shape)
        model = transformers.T5ForConditionalGeneration(cfg).eval()
        with torch.no_grad():
            model.shared.weight[1].mul_(eos_scale)
        model.save_pretrained(str(d), safe_serialization=True)
        tok.save_pretrained(str(d))
    torch.manual_seed(3)
    cfg = transformers.T5Config(vocab_size=len(tok), feed_forward_proj="relu", **shape)
    transformers.T5EncoderModel(cfg).eval().save_pretrained(str(emb_dir), safe_serialization=True)
    tok.save_pretrained(str(emb_dir))
    ref.register_embedder("gtr_base", "gtr", emb_dir)
    import vec2text

    with ref.offline_vec2text(cwd=root):
        torch.manual_seed(4)
        c = vec2text.models.config.InversionConfig(**ref.inversion_config_fields(root / "t5_inverter", "gtr_base"))
        vec2text.models.InversionModel(c).eval().save_pretrained(str(inv_dir), safe_serialization=True)
        c = vec2text.models.config.InversionConfig(**ref.inversion_config_fields(root / "t5_corrector", "gtr_base"))
        vec2text.models.CorrectorEncoderModel(c).eval().save_pretrained(str(cor_dir), safe_serialization=True)
    (cor_dir / ".complete").write_text("ok")
    return inv_dir, cor_dir, emb_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=8, help="embeddings")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--eos-scale", type=float, default=12.0)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--keep-finished", action="store_true",
                    help="also time vec2text_c computing every row to max_length as transformers does "
                         "(VEC2TEXT_C_KEEP_FINISHED=1), to show what dropping finished examples saves")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="vec2text_c's T5 weights (bfloat16: texts may differ from the fp32 reference)")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "v2t-bench" / "loop"))
    args = ap.parse_args()
    set_threads(args.threads)

    import numpy as np
    import torch

    import v2t_reference as ref
    import vec2text_c
    from vec2text_c import api
    from vec2text_c.embedders import load_embedder

    root = Path(args.cache) / f"v{args.vocab}-eos{args.eos_scale}"
    t0 = time.perf_counter()
    inv_dir, cor_dir, emb_dir = build(root, args.vocab, args.eos_scale)
    print(f"models ready in {time.perf_counter() - t0:.0f}s: {root}")
    ref.register_embedder("gtr_base", "gtr", emb_dir)

    ours = vec2text_c.load_corrector(inv_dir, cor_dir, embedder=load_embedder(emb_dir, recipe="gtr"), dtype=args.dtype)
    texts = ref.read_sentences()[6000 : 6000 + args.n]
    E = ours.embed(texts, 128)
    print(f"threads={args.threads} torch={torch.__version__} oneDNN={vec2text_c._core.onednn_version()[:3]} "
          f"n={args.n} num_steps={args.steps} sequence_beam_width={args.beam}")

    timings: dict = {}
    t0 = time.perf_counter()
    got = api._run(E, ours, args.steps, args.beam, timings=timings)
    t_ours = time.perf_counter() - t0
    lengths = [len(ours.tokenizer.encode(t)) for t in got]
    print(f"vec2text_c: {t_ours:.2f}s  (output tokens: mean {np.mean(lengths):.1f}, max {max(lengths)})")
    total = sum(timings.values())
    for k, v in timings.items():
        print(f"    {k:<11} {v:7.2f}s  {v / t_ours:6.1%}")
    print(f"    {'other':<11} {t_ours - total:7.2f}s  {(t_ours - total) / t_ours:6.1%}")
    if args.keep_finished:
        import os

        os.environ["VEC2TEXT_C_KEEP_FINISHED"] = "1"
        t0 = time.perf_counter()
        kept = api._run(E, ours, args.steps, args.beam)
        t_kept = time.perf_counter() - t0
        del os.environ["VEC2TEXT_C_KEEP_FINISHED"]
        print(f"vec2text_c computing finished rows too: {t_kept:.2f}s; dropping them is {t_kept / t_ours:.2f}x "
              f"faster; identical strings: {sum(a == b for a, b in zip(got, kept))}/{len(got)}")
    if args.skip_reference:
        return

    import vec2text

    corrector = ref.load_reference_corrector(inv_dir, cor_dir, root)
    E_ref = ref.reference_embed(corrector, texts)
    print(f"target embeddings: max |ours - reference| = {np.abs(E - E_ref).max():.2e}")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with torch.inference_mode():
        want = vec2text.api.invert_embeddings(torch.from_numpy(E), corrector, num_steps=args.steps,
                                              sequence_beam_width=args.beam)
    t_ref = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(got, want))
    print(f"vec2text 0.0.13 (PyTorch CPU): {t_ref:.2f}s")
    print(f"speedup {t_ref / t_ours:.2f}x; identical strings: {same}/{len(want)}")
    if same != len(want):
        for a, b in zip(got, want):
            if a != b:
                print(f"  first difference:\n    ours: {a!r}\n    ref:  {b!r}")
                break


if __name__ == "__main__":
    main()
