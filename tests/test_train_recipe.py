"""The shipped inverter's training recipe: the warm start from all-MiniLM-L6-v2's BERT weights,
the bag-of-words loss, lowercase targets, the gate measured during training, the time budget,
and the clear errors of `prepare` / `vec2text-c train` on corpora it cannot use."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import vec2text_c
from vec2text_c.cli import main as cli_main
from vec2text_c.train.modeling import CorrectorModule, InversionModule, bow_logits, bow_loss, repeated_ngrams, unlikelihood_loss
from vec2text_c.train.pipeline import (ModelShape, _load_module, export, make_hypotheses, prepare, spread,
                                       train_corrector, train_inverter)
from vec2text_c.train.trainer import TrainSettings, fit
from vec2text_c.train.warmstart import _bert_tensors, bert_dir, piece_embeddings, warm_start_t5

# d_model and heads as all-MiniLM-L6-v2 (the warm start copies its layers); the rest tiny
RECIPE = ModelShape(vocab_size=400, d_model=384, num_heads=12, d_ff=64, num_layers=1, num_decoder_layers=2,
                    feed_forward_proj="gelu", num_repeat_tokens=4, lowercase=True)
STEPS = TrainSettings(steps=8, batch_size=16, lr=1e-3, warmup=2, eval_every=4, save_every=4, log_every=2,
                      bf16=False, threads=1, bow_weight=1.0, warm_start="layers")


def _sick_lines(shared_data: Path, n: int) -> list[str]:
    out = []
    for line in (shared_data / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3:
            out.append(cols[1])
    return list(dict.fromkeys(out))[:n]


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("recipe")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(_sick_lines(shared_data, 600)) + "\n")
    work = root / "work"
    prepare([corpus], work, shape=RECIPE, heldout_fraction=0.1, val_size=20)
    train_inverter(work, STEPS)
    make_hypotheses(work, n=48, extra=2)
    train_corrector(work, replace(STEPS, steps=4, eval_every=4, save_every=4))
    export(work, root / "fp32", bf16=False)
    return root, work


# ---- warm start ---------------------------------------------------------------------------


def test_piece_embeddings_are_means_of_the_wordpiece_rows(recipe_run):
    import sentencepiece as spm

    _, work = recipe_run
    bert = bert_dir("sentence-transformers/all-MiniLM-L6-v2")
    t, _ = _bert_tensors(bert)
    W = t["embeddings.word_embeddings.weight"]
    wp = vec2text_c.WordPieceTokenizer.from_pretrained(bert)
    sp = spm.SentencePieceProcessor(model_file=str(work / "t5" / "spiece.model"))
    E = piece_embeddings(work / "t5" / "spiece.model", bert)
    assert E.shape == (RECIPE.vocab_size, 384)
    assert abs(float(E.std()) - 1.0) < 1e-5
    # recompute the unscaled matrix by hand for word-initial pieces, then compare directions
    word = [i for i in range(3, sp.get_piece_size()) if sp.id_to_piece(i).startswith("\u2581") and len(sp.id_to_piece(i)) > 2]
    assert len(word) > 50
    raw = np.stack([W[wp.encode(sp.id_to_piece(i)[1:], add_special_tokens=False)].mean(0) for i in word])
    scale = raw / E[word]
    np.testing.assert_allclose(scale, np.full_like(scale, scale[0, 0]), rtol=1e-4)
    # the special ids take BERT's [PAD], [SEP], [UNK]
    for i, tok in ((0, "[PAD]"), (1, "[SEP]"), (2, "[UNK]")):
        np.testing.assert_allclose(E[i] * scale[0, 0], W[wp.convert_tokens_to_ids(tok)], rtol=1e-4, atol=1e-7)


def test_warm_start_copies_the_bert_layers(recipe_run):
    from vec2text_c.train.modeling import make_t5

    _, work = recipe_run
    bert = bert_dir("sentence-transformers/all-MiniLM-L6-v2")
    t, _ = _bert_tensors(bert)
    t5 = make_t5(RECIPE.t5_config())
    got = warm_start_t5(t5, work / "t5" / "spiece.model", bert, "layers")
    assert got["encoder"] == [5] and got["decoder"] == [0, 1]
    sa = t5.encoder.block[0].layer[0].SelfAttention
    np.testing.assert_allclose(sa.q.weight.detach().numpy(), t["encoder.layer.5.attention.self.query.weight"] / np.sqrt(32), rtol=1e-6)
    np.testing.assert_array_equal(sa.k.weight.detach().numpy(), t["encoder.layer.5.attention.self.key.weight"])
    np.testing.assert_array_equal(sa.v.weight.detach().numpy(), t["encoder.layer.5.attention.self.value.weight"])
    np.testing.assert_array_equal(sa.o.weight.detach().numpy(), t["encoder.layer.5.attention.output.dense.weight"])
    ff = t5.decoder.block[1].layer[2].DenseReluDense
    wi, wo = t["encoder.layer.1.intermediate.dense.weight"], t["encoder.layer.1.output.dense.weight"]
    keep = np.sort(np.argsort(-(np.linalg.norm(wi, axis=1) * np.linalg.norm(wo, axis=0)))[:RECIPE.d_ff])
    np.testing.assert_array_equal(ff.wi.weight.detach().numpy(), wi[keep])
    np.testing.assert_array_equal(ff.wo.weight.detach().numpy(), wo[:, keep])
    # the kept units are those of largest norm product
    norms = np.linalg.norm(wi, axis=1) * np.linalg.norm(wo, axis=0)
    assert norms[keep].min() >= np.delete(norms, keep).max()
    np.testing.assert_allclose(t5.shared.weight.detach().numpy(), piece_embeddings(work / "t5" / "spiece.model", bert))


def test_warm_start_rejects_shapes_it_cannot_fill(recipe_run):
    from vec2text_c.train.modeling import make_t5

    _, work = recipe_run
    bert = bert_dir("sentence-transformers/all-MiniLM-L6-v2")
    sp = work / "t5" / "spiece.model"
    with pytest.raises(ValueError, match="warm_start: expected one of"):
        warm_start_t5(make_t5(RECIPE.t5_config()), sp, bert, "everything")
    small = ModelShape(vocab_size=400, d_model=32, num_heads=2, d_ff=64, num_layers=1).t5_config()
    with pytest.raises(ValueError, match="d_model 32 must equal the BERT hidden size 384"):
        warm_start_t5(make_t5(small), sp, bert, "embeddings")
    wrong_heads = dict(RECIPE.t5_config(), num_heads=6, d_kv=64)
    with pytest.raises(ValueError, match="needs 12 heads of 32, it has 6 of 64"):
        warm_start_t5(make_t5(wrong_heads), sp, bert, "layers")
    with pytest.raises(ValueError, match="has 400 pieces, the T5 vocab_size is 500"):
        warm_start_t5(make_t5(dict(RECIPE.t5_config(), vocab_size=500)), sp, bert, "embeddings")
    with pytest.raises(ValueError, match="neither a folder nor all-MiniLM-L6-v2"):
        bert_dir("some/other-model")


# ---- the bag-of-words loss ----------------------------------------------------------------


def test_bow_loss_is_the_mean_log_probability_of_the_target_words():
    from vec2text_c.train.modeling import make_t5

    torch.manual_seed(0)
    t5 = make_t5(ModelShape(vocab_size=50, d_model=16, num_heads=2, d_ff=32, num_layers=1).t5_config())
    h = torch.randn(2, 3, 16)
    labels = torch.tensor([[5, 7, 5, 1, -100], [9, 1, -100, -100, -100]])
    got = float(bow_loss(t5, h, labels).detach())
    E = t5.shared.weight.detach().numpy().astype(np.float64)
    logits = h.numpy().astype(np.float64).mean(1) / 4.0 @ E.T
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want = (-(logp[0, 5] + logp[0, 7]) / 2 - logp[1, 9]) / 2
    assert abs(got - want) < 1e-5
    np.testing.assert_allclose(bow_logits(t5, h).detach().numpy(), logits, rtol=1e-4, atol=1e-5)


def test_bow_weight_adds_the_bag_loss_to_the_token_loss():
    torch.manual_seed(0)
    m = InversionModule(ModelShape(vocab_size=50, d_model=16, num_heads=2, d_ff=32, num_layers=1).t5_config(), 8, 2)
    e = torch.randn(3, 8)
    labels = torch.tensor([[5, 7, 1], [9, 1, -100], [4, 4, 1]])
    plain = float(m(e, labels).detach())
    assert set(m.last_parts) == {"ce"} and abs(m.last_parts["ce"] - plain) < 1e-6
    total = float(m(e, labels, 0.5).detach())
    assert abs(total - (m.last_parts["ce"] + 0.5 * m.last_parts["bow"])) < 1e-5
    assert m.last_parts["bow"] > 0


# ---- the unlikelihood loss ----------------------------------------------------------------


def _unlikelihood_by_hand(logits: np.ndarray, labels: np.ndarray) -> float:
    # Welleck et al.'s token-level candidates, written as loops: the distinct earlier target
    # tokens other than the step's own, pad (0) and -100 left out; the mean over target steps
    total, steps = 0.0, 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1]):
            if labels[b, t] <= 0:
                continue
            steps += 1
            p = np.exp(logits[b, t] - logits[b, t].max())
            p /= p.sum()
            for c in {int(x) for x in labels[b, :t] if x > 0} - {int(labels[b, t])}:
                total -= np.log(max(1.0 - p[c], 1e-5))
    return total / steps


def test_unlikelihood_loss_matches_the_candidate_sets_written_out():
    rng = np.random.default_rng(0)
    labels = np.array([[5, 7, 5, 5, 9, 1], [3, 3, 4, 1, -100, -100], [8, 1, -100, -100, -100, -100]])
    logits = rng.normal(0, 3, size=(3, 6, 12))
    logits[0, 3, 7] = 9.0  # a step that all but predicts an earlier token: a large term
    got = float(unlikelihood_loss(torch.tensor(logits, dtype=torch.float32), torch.tensor(labels)))
    want = _unlikelihood_by_hand(logits, labels)
    assert want > 0.2
    assert abs(got - want) < 1e-4 * max(1.0, want)
    # a target without repeats and a model sure of each token: the loss is near zero
    sure = np.full((1, 4, 12), -20.0)
    lab = np.array([[2, 6, 4, 1]])
    sure[0, np.arange(4), lab[0]] = 20.0
    assert float(unlikelihood_loss(torch.tensor(sure, dtype=torch.float32), torch.tensor(lab))) < 1e-6


def test_unlikelihood_weight_adds_the_loss_in_both_modules():
    torch.manual_seed(0)
    cfg = ModelShape(vocab_size=50, d_model=16, num_heads=2, d_ff=32, num_layers=1).t5_config()
    m = InversionModule(cfg, 8, 2)
    e = torch.randn(3, 8)
    labels = torch.tensor([[5, 7, 5, 1], [9, 9, 1, -100], [4, 6, 1, -100]])
    plain = float(m(e, labels).detach())
    total = float(m(e, labels, 0.0, 0.5).detach())
    assert set(m.last_parts) == {"ce", "ul"} and abs(m.last_parts["ce"] - plain) < 1e-6
    assert m.last_parts["ul"] > 0 and abs(total - (plain + 0.5 * m.last_parts["ul"])) < 1e-5
    for gate in (False, True):
        c = CorrectorModule(cfg, 8, 2, copy_gate=gate)
        h_ids = torch.tensor([[0, 5, 7, 1], [0, 9, 1, 0], [0, 4, 4, 1]])
        plain = float(c(e, e * 0.5, h_ids, labels).detach())
        total = float(c(e, e * 0.5, h_ids, labels, 2.0).detach())
        assert c.last_parts["ul"] > 0 and abs(total - (plain + 2.0 * c.last_parts["ul"])) < 1e-5


@pytest.mark.parametrize("gate", [False, True])
def test_corrector_sequence_unlikelihood_penalises_its_greedy_loops(gate):
    torch.manual_seed(2)
    cfg = ModelShape(vocab_size=30, d_model=16, num_heads=2, d_ff=32, num_layers=1, num_decoder_layers=1).t5_config()
    c = CorrectorModule(cfg, 8, 2, copy_gate=gate)
    if gate:
        with torch.no_grad():
            c.copy_gate.bias.fill_(0.5)
    c.eval()
    e = torch.randn(4, 8)
    h_ids = torch.tensor([[3, 4, 5, 1], [6, 6, 1, 0], [7, 8, 9, 1], [2, 1, 0, 0]])
    labels = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 1]] * 4)
    ids = c.generate_greedy(e, e * 0.5, h_ids, max_length=labels.shape[1] + 1)
    y = ids[:, 1:]
    flags = repeated_ngrams(y, 4)
    assert bool(flags.any()), "the random corrector should loop somewhere for this test to mean anything"
    plain = float(c(e, e * 0.5, h_ids, labels).detach())
    total = c(e, e * 0.5, h_ids, labels, 0.0, 1.0, 1.0)
    # by hand: the logits of the decoder fed the greedy decoding (copy gate included), flagged tokens
    with torch.no_grad():
        x, mask = c.encoder_inputs(e, e * 0.5, h_ids)
        t5 = c.encoder_decoder
        enc = t5.encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
        dec = t5.decoder(input_ids=ids[:, :-1], encoder_hidden_states=enc, encoder_attention_mask=mask).last_hidden_state
        logits = c.copy_logits(dec, h_ids) if gate else t5.lm_head(dec * 16 ** -0.5)
    p = torch.softmax(logits.double(), -1).gather(2, y.unsqueeze(-1)).squeeze(-1).numpy()
    want = -(np.log(np.maximum(1 - p, 1e-5)) * flags.numpy()).sum() / (y != 0).numpy().sum()
    assert want > 0 and abs(c.last_parts["seq_ul"] - want) < 1e-4 * max(1.0, want)
    assert abs(float(total.detach()) - (plain + c.last_parts["seq_ul"])) < 1e-4
    assert c.last_parts["repeats"] == float(flags.any(1).float().mean())


def test_train_rejects_a_negative_unlikelihood_weight(tmp_path, capsys):
    for flag in ("--unlikelihood", "--sequence-unlikelihood"):
        assert cli_main(["train", "--workdir", str(tmp_path / "w"), "--stage", "inverter", flag, "-1"]) == 2
        assert f"{flag}: expected a weight >= 0, got -1" in capsys.readouterr().err


def test_repeated_ngrams_flags_every_token_of_a_repeat():
    ids = torch.tensor([[5, 6, 7, 8, 5, 6, 7, 8, 9, 1, 0, 0],
                        [4, 4, 4, 4, 4, 4, 1, 0, 0, 0, 0, 0],
                        [2, 3, 2, 3, 2, 1, 0, 0, 0, 0, 0, 0],
                        [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1]])
    got = repeated_ngrams(ids, 4).numpy().astype(int)
    want = np.zeros(ids.shape, dtype=int)
    want[0, 4:8] = 1  # "5 6 7 8" again
    want[1, 1:6] = 1  # the 4-gram "4 4 4 4" ends at 4 and 5: tokens 1..5
    np.testing.assert_array_equal(got, want)  # row 2's 4-grams 2323, 3232, 2321 are all new
    assert repeated_ngrams(ids, 2)[2].tolist()[:6] == [False, False, True, True, True, False]


def test_the_repetition_rate_tool_counts_the_rows_the_loss_flags():
    import importlib.util

    spec = importlib.util.spec_from_file_location("repetition_rate", Path(__file__).parents[1] / "tools" / "repetition_rate.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rng = np.random.default_rng(1)
    rows = rng.integers(2, 6, size=(300, 12))  # 4 tokens: short rows repeat a 4-gram by chance often
    rows[rng.random(300) < 0.3, 9:] = 0  # some rows end early (pad)
    flagged = repeated_ngrams(torch.tensor(rows), 4).any(1).tolist()
    counted = [tool.repeats_a_4gram([int(x) for x in r if x != 0]) for r in rows]
    assert counted == flagged and 0 < sum(counted) < len(counted)


def test_sequence_unlikelihood_penalises_the_greedy_loops_of_the_model():
    torch.manual_seed(2)
    cfg = ModelShape(vocab_size=30, d_model=16, num_heads=2, d_ff=32, num_layers=1, num_decoder_layers=1).t5_config()
    m = InversionModule(cfg, 8, 2)
    e = torch.randn(4, 8)
    m.eval()  # dropout off, so that the hand computation sees the same decoder
    x, mask = m.encoder_inputs(e)
    enc = m.encoder_decoder.encoder(inputs_embeds=x, attention_mask=mask).last_hidden_state
    with torch.no_grad():
        ids = m.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=13, do_sample=False,
                                         num_beams=1)
    y = ids[:, 1:]
    flags = repeated_ngrams(y, 4)
    assert bool(flags.any()), "the random model should loop somewhere for this test to mean anything"
    loss, frac = m.sequence_unlikelihood(x, mask, enc, max_length=13)
    assert not m.training
    # by hand: the decoder fed the decoding, the same flagged tokens, mean over decoded tokens
    with torch.no_grad():
        logits = m.encoder_decoder(encoder_outputs=(enc,), attention_mask=mask, decoder_input_ids=ids[:, :-1]).logits
    p = torch.softmax(logits.double(), -1).gather(2, y.unsqueeze(-1)).squeeze(-1).numpy()
    valid = (y != 0).numpy()
    want = -(np.log(np.maximum(1 - p, 1e-5)) * flags.numpy()).sum() / valid.sum()
    assert frac == float(flags.any(1).float().mean())
    assert want > 0 and abs(float(loss.detach()) - want) < 1e-4 * max(1.0, want)
    loss.backward()  # the gradient reaches the decoder
    assert float(m.encoder_decoder.decoder.block[0].layer[0].SelfAttention.q.weight.grad.abs().sum()) > 0
    m.train()
    m.sequence_unlikelihood(x.detach(), mask, enc.detach(), max_length=13)
    assert m.training  # the decoding ran with dropout off, and the mode is restored


# ---- the run: lowercase targets, parts and gate in the log, the core runs the export ----


def test_targets_are_lowercase_and_the_log_has_parts_and_gate(recipe_run):
    _, work = recipe_run
    tok = vec2text_c.T5Tokenizer.from_pretrained(work / "t5")
    ids = np.load(work / "data" / "ids.npz")
    train = (work / "data" / "train.txt").read_text().splitlines()
    assert any(t != t.lower() for t in train[:50])  # the texts keep their case...
    for k in range(20):  # ...the targets do not
        assert tok.decode(ids["ids"][k][: ids["lengths"][k]], skip_special_tokens=True) == train[k].lower()
    log = [json.loads(x) for x in (work / "runs" / "inverter" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert all("ce" in r and "bow" in r for r in steps)
    for r in steps:
        assert abs(r["loss"] - (r["ce"] + r["bow"])) < 1e-4
    gates = [r for r in log if "gate_cosine" in r]
    assert [r["step"] for r in gates] == [4, 8]
    assert all(-1.0 <= r["gate_cosine"] <= 1.0 and 0.0 <= r["gate_bow_f1"] <= 1.0 for r in gates)
    best = torch.load(work / "runs" / "inverter" / "best.pt", weights_only=True)
    assert best["gate_cosine"] == max(r["gate_cosine"] for r in gates)


def test_gate_measures_what_the_core_would_measure(recipe_run):
    from vec2text_c.train.pipeline import gate

    _, work = recipe_run
    model = _load_module(work, "inverter")
    got = gate(work, n=8)(model)
    val = (work / "data" / "val.txt").read_text().splitlines()
    pick = spread(len(val), 8)  # 8 of the 20 validation texts, across the split
    assert len(val) == 20 and pick.tolist() != list(range(8))
    texts = [val[i] for i in pick]
    info = json.loads((work / "data" / "info.json").read_text())
    E = np.load(work / "data" / "embeddings.npy")[info["n_train"] + pick]
    with torch.no_grad():
        x, mask = model.encoder_inputs(torch.from_numpy(E))
        ids = model.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=32, num_beams=1,
                                             do_sample=False).numpy()
    out = vec2text_c.T5Tokenizer.from_pretrained(work / "t5").batch_decode(ids, skip_special_tokens=True)
    h = vec2text_c.load_embedder("all-MiniLM-L6-v2").encode(out, max_length=32)
    cos = (h * E).sum(1) / (np.linalg.norm(h, axis=1) * np.linalg.norm(E, axis=1))
    assert abs(got["gate_cosine"] - float(cos.mean())) < 1e-5
    f1 = []
    for a, b in zip(out, texts):
        a, b = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
        k = len(a & b)
        f1.append(float(a == b) if not a or not b else (0.0 if k == 0 else 2 * k / (len(a) + len(b))))
    assert abs(got["gate_bow_f1"] - float(np.mean(f1))) < 1e-9


def test_exported_recipe_inverter_runs_on_the_core_as_in_torch(recipe_run):
    root, work = recipe_run
    model = _load_module(work, "inverter")
    inv = vec2text_c.models.read_checkpoint(root / "fp32" / "inverter", "inverter")
    t5dir = vec2text_c.models._t5_dir(str(inv.config["model_name_or_path"]), inv.path)
    t5 = vec2text_c.models._load_t5(inv, t5dir, str(inv.config["model_name_or_path"]))
    cfg = json.loads((t5dir / "config.json").read_text())
    assert cfg["feed_forward_proj"] == "gelu" and cfg["num_layers"] == 1 and cfg["num_decoder_layers"] == 2
    core = vec2text_c._core.Inverter(str(inv.weights), t5._core, inv.num_repeat_tokens)
    E = np.load(work / "data" / "embeddings.npy")[:12]
    with torch.no_grad():
        x, mask = model.encoder_inputs(torch.from_numpy(E))
        want = model.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=32, num_beams=1,
                                              do_sample=False).numpy()
    ours = core.inputs(E)
    np.testing.assert_allclose(ours, x.numpy(), atol=1e-5, rtol=1e-5)
    assert t5.generate(inputs_embeds=ours, max_length=32).tolist() == want.tolist()


def test_spread_draws_across_the_split():
    a = spread(1000, 50)
    assert a.tolist() == sorted(set(a.tolist())) and len(a) == 50 and 0 <= a.min() and a.max() < 1000
    assert a.tolist() == spread(1000, 50).tolist()  # the same draw every time
    # every tenth of the split is represented (a prefix would cover only the first)
    assert len(set((a // 100).tolist())) == 10
    assert spread(7, 10).tolist() == list(range(7)) and spread(7, None).tolist() == list(range(7))


def test_time_budget_stops_and_saves(tmp_path):
    model = torch.nn.Linear(2, 1)
    X = torch.randn(64, 2)

    def loss_fn(m, idx):
        return (m(X[idx]) ** 2).mean()

    s = TrainSettings(steps=1000, batch_size=8, warmup=1, bf16=False, threads=1, time_budget=1e-9, log_every=1)
    log = fit(model, loss_fn, np.ones(64), None, s, tmp_path, progress=False)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["step"] == 1 and [r["step"] for r in log] == [1]


# ---- corpora that cannot be used: one clear line and a non-zero status -------------------


def _train_cli(tmp_path, lines, *extra):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(lines) + "\n")
    return cli_main(["train", "--stage", "prepare", "--corpus", str(corpus), "--workdir", str(tmp_path / "w"), *extra])


def test_train_with_a_corpus_too_small_for_the_vocabulary(tmp_path, capsys, shared_data):
    assert _train_cli(tmp_path, _sick_lines(shared_data, 300), "--vocab-size", "8000") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 or "error" in err[-1]
    assert "vec2text-c: error: vocab_size: the corpus" in err[-1] and "too small for a vocabulary of 8000" in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_train_with_no_text_left_for_validation(tmp_path, capsys):
    lines = ["A man is playing a guitar on the stage tonight."] * 50 + ["The man is playing a guitar on the stage tonight."]
    assert _train_cli(tmp_path, lines, "--vocab-size", "100") == 2
    err = capsys.readouterr().err
    assert "vec2text-c: error: corpus:" in err and "for validation" in err and "Traceback" not in err


def test_train_with_texts_that_all_exceed_the_length_limit(tmp_path, capsys):
    # five-word texts of long numbers: too long for 32 tokens, too short to be cut in halves
    rng = np.random.default_rng(0)
    lines = [" ".join(str(rng.integers(10**11, 10**12)) for _ in range(5)) for _ in range(400)]
    assert _train_cli(tmp_path, lines, "--vocab-size", "100") == 2
    err = capsys.readouterr().err
    assert "vec2text-c: error: corpus: no training text fits max_seq_length = 32 tokens" in err
    assert "Traceback" not in err


def test_hypotheses_add_beam_alternatives_and_the_corrector_runs_on_the_core(recipe_run):
    root, work = recipe_run
    h = np.load(work / "data" / "hypotheses.npz")
    rows, ids, n = h["rows"], h["ids"], int(h["n_train"])
    info = json.loads((work / "data" / "info.json").read_text())
    train_rows = rows[:n]
    # 48 training texts drawn across the split (it keeps the corpus order), not its first 48
    assert set(train_rows.tolist()) == set(spread(info["n_train"], 48).tolist())
    assert len(set(train_rows.tolist())) == 48 and train_rows.max() >= 0.8 * info["n_train"]
    assert n > 48  # beam alternatives beside the greedy ones
    assert (rows[n:] >= info["n_train"]).all() and len(rows) - n == info["n_val"]
    # the first hypothesis of each text is its greedy one; the others differ from it
    first = {}
    for r, row in zip(train_rows.tolist(), ids[:n]):
        if r in first:
            assert not (row == first[r]).all()
        else:
            first[r] = row
    corr = vec2text_c.load_corrector(root / "fp32" / "inverter", root / "fp32" / "corrector")
    E = np.load(work / "data" / "embeddings.npy")
    seen = {}
    # hypotheses come from the inverter as make_hypotheses exported it (bf16, in the work folder)
    made_with = vec2text_c.load_corrector(work / "inverter", root / "fp32" / "corrector")
    sel = sorted(first)[:8]
    vec2text_c.api._run(E[sel], made_with, 1, 1, on_round=lambda rnd, b, i, lens, embs, cos, best, active:
                        seen.setdefault(rnd, i.copy()))
    L = ids.shape[1]
    assert seen[0][:, :L].tolist() == [first[r].astype(np.int64).tolist() for r in sel]
    # hypothesis embeddings are the embedder's of the decoded texts
    texts = corr.tokenizer.batch_decode(ids[:n][-6:], skip_special_tokens=True)
    np.testing.assert_allclose(h["embeddings"][:n][-6:], corr.embed(texts, 32), atol=1e-5)
    # the corrector's encoder inputs on the core are the training module's
    model = _load_module(work, "corrector")
    k = np.arange(n - 6, n)
    with torch.no_grad():
        x, mask = model.encoder_inputs(torch.from_numpy(E[rows[k]]), torch.from_numpy(h["embeddings"][k]),
                                       torch.from_numpy(ids[k].astype(np.int64)))
    got = corr.corrector.inputs(E[rows[k]], h["embeddings"][k], ids[k].astype(np.int64))
    np.testing.assert_allclose(got[0], x.numpy(), atol=2e-5)
    assert len(vec2text_c.invert_embeddings(E[:2], corr, num_steps=1, sequence_beam_width=2)) == 2


def test_training_continues_from_exported_weights(recipe_run, tmp_path):
    from vec2text_c.train.pipeline import load_exported

    root, work = recipe_run
    model = _load_module(work, "inverter")
    fresh = InversionModule(RECIPE.t5_config(), 384, RECIPE.num_repeat_tokens)
    load_exported(fresh, root / "fp32" / "inverter")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=0)
    # a new work folder prepared with the export's tokenizer continues from its weights
    w2 = tmp_path / "w2"
    corpus = tmp_path / "c.txt"
    corpus.write_text((work / "data" / "train.txt").read_text())
    prepare([corpus], w2, shape=RECIPE, heldout_fraction=0.1, val_size=10, tokenizer_from=root / "fp32")
    assert (w2 / "t5" / "spiece.model").read_bytes() == (work / "t5" / "spiece.model").read_bytes()
    log = train_inverter(w2, replace(STEPS, steps=2, eval_every=2, save_every=2, lr=0.0, warmup=1), init_from=root / "fp32" / "inverter")
    assert log
    moved = torch.load(w2 / "runs" / "inverter" / "state.pt", weights_only=True)["model"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(moved[k], v, rtol=0, atol=0)  # lr 0: still the exported weights
    # another tokenizer is refused, and a model of another shape too
    w3 = tmp_path / "w3"
    prepare([corpus], w3, shape=replace(RECIPE, vocab_size=300), heldout_fraction=0.1, val_size=10)
    with pytest.raises(ValueError, match="init_from: .* was trained with another tokenizer"):
        train_inverter(w3, STEPS, init_from=root / "fp32" / "inverter")
    with pytest.raises(ValueError, match="does not fit this model: .* expected shape"):
        load_exported(InversionModule(dict(RECIPE.t5_config(), d_ff=32), 384, RECIPE.num_repeat_tokens), root / "fp32" / "inverter")
