"""The vec2text-c command line: its subcommands against the library (shipped model), and its
errors: one line on stderr, exit status 2, no traceback."""
import json
import subprocess
import sys

import numpy as np
import pytest

import vec2text_c
from vec2text_c.cli import main


def test_embed_txt_matches_library(tmp_path):
    texts = ["a first line of text", "and a second, longer line of text"]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.npy"
    assert main(["embed", str(src), "-o", str(out)]) == 0
    got = np.load(out)
    expect = vec2text_c.load_embedder("all-MiniLM-L6-v2").encode(texts)
    np.testing.assert_allclose(got, expect, atol=1e-6)


def test_embed_jsonl_objects_and_strings(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "one"}) + "\n" + json.dumps("two") + "\n")
    out = tmp_path / "out.npy"
    assert main(["embed", str(src), "-o", str(out)]) == 0
    assert np.load(out).shape == (2, 384)


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        (None, ".txt", "file not found"),
        ("", ".txt", "empty file"),
        ("{not json\n", ".jsonl", "not valid JSON"),
        ('{"body": "x"}\n', ".jsonl", "string field 'text'"),
    ],
)
def test_embed_bad_input_is_one_line_error(tmp_path, capsys, content, suffix, message):
    src = tmp_path / f"in{suffix}"
    if content is not None:
        src.write_text(content)
    assert main(["embed", str(src), "-o", str(tmp_path / "o.npy")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_help_for_each_subcommand(tmp_path):
    # run outside the checkout, importing the same vec2text_c this test imported
    import os
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(vec2text_c.__file__).resolve().parents[1]))
    for sub in ([], ["demo"], ["embed"], ["invert"], ["eval"], ["train"]):
        r = subprocess.run([sys.executable, "-m", "vec2text_c.cli", *sub, "--help"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
        assert r.returncode == 0 and "usage: vec2text-c" in r.stdout, r.stderr


# ---- commands that use the shipped model ----------------------------------------------------

STEPS, BEAM = 2, 2


@pytest.fixture(scope="module")
def shipped():
    return vec2text_c.load_pretrained_corrector()


@pytest.fixture(scope="module")
def pair(minilm_pair):
    """A model with a corrector (tiny, trained by the tests) for the commands' correction rounds."""
    return vec2text_c.load_corrector(*minilm_pair)


@pytest.fixture(scope="module")
def pair_args(minilm_pair):
    return ["--inverter", str(minilm_pair[0]), "--corrector", str(minilm_pair[1])]


def _cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_demo_prints_every_round_with_its_cosine(capsys, pair, pair_args):
    from vec2text_c.cli import DEMO_SENTENCES

    shipped = pair
    assert main(["demo", "--steps", str(STEPS), "--beam", str(BEAM), *pair_args]) == 0
    out = capsys.readouterr().out
    for s in DEMO_SENTENCES:
        assert f"original   {s}" in out
    lines = [ln.split() for ln in out.splitlines() if " cos " in ln]
    assert len(lines) == len(DEMO_SENTENCES) * (STEPS + 1)
    # the last round's text and cosine are those of the library's answer
    E = shipped.embed(DEMO_SENTENCES, 128)
    want = vec2text_c.invert_embeddings(E, shipped, num_steps=STEPS, sequence_beam_width=BEAM)
    want_cos = _cos(shipped.embed(want, 32), E)
    last = [ln for ln in out.splitlines() if ln.strip().startswith(f"round {STEPS}")]
    for ln, text, c in zip(last, want, want_cos):
        assert ln.split(None, 4)[4] == text
        assert abs(float(ln.split()[3]) - c) < 1e-4


def test_invert_texts_to_jsonl_matches_the_library(tmp_path, pair, pair_args):
    shipped = pair
    texts = ["A man is playing a guitar on the stage.", "The stock market fell sharply on Monday."]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["invert", str(src), "-o", str(out), "--steps", str(STEPS), "--beam", str(BEAM), "--rounds", "-q",
                 *pair_args]) == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    want = vec2text_c.invert_strings(texts, shipped, num_steps=STEPS, sequence_beam_width=BEAM)
    assert [r["text"] for r in recs] == want
    assert [r["original"] for r in recs] == texts
    cos = _cos(shipped.embed(want, 32), shipped.embed(texts, 128))
    np.testing.assert_allclose([r["cosine"] for r in recs], cos, atol=1e-5)
    assert [x["round"] for x in recs[0]["rounds"]] == list(range(STEPS + 1))


def test_invert_npy_one_vector_and_a_matrix(tmp_path, shipped):
    E = shipped.embed(["Two dogs run across a field of grass."] * 2, 128)
    np.save(tmp_path / "one.npy", E[0])
    np.save(tmp_path / "two.npy", E)
    assert main(["invert", str(tmp_path / "one.npy"), "-o", str(tmp_path / "a.jsonl"), "--steps", "-1", "--beam", "0", "-q"]) == 0
    assert main(["invert", str(tmp_path / "two.npy"), "-o", str(tmp_path / "b.jsonl"), "--steps", "-1", "--beam", "0", "-q"]) == 0
    a = [json.loads(x)["text"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x)["text"] for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a == b[:1] and b == vec2text_c.invert_embeddings(E, shipped)


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, [], "file not found"),
        (lambda p: np.save(p, np.zeros((3, 10), np.float32)), [], "expected embeddings of shape [N, 384]"),
        (lambda p: np.save(p, np.zeros((0, 384), np.float32)), [], "empty array"),
        (lambda p: np.save(p, np.zeros((2, 384), np.int64)), [], "floating-point"),
        (lambda p: np.save(p, np.full((2, 384), np.nan, np.float32)), [], "NaN"),
        (lambda p: p.write_bytes(b"not an npy"), [], "not a .npy file"),
        (lambda p: np.save(p, np.ones((1, 384), np.float32)), ["--steps", "-1", "--beam", "2"], "--beam needs"),
    ],
)
def test_invert_bad_input_is_one_line_error(tmp_path, capsys, make, args, message):
    src = tmp_path / "in.npy"
    if make is not None:
        make(src)
    assert main(["invert", str(src), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_invert_unknown_suffix_and_empty_text_file(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("a,b\n")
    (tmp_path / "e.txt").write_text("\n")
    assert main(["invert", str(tmp_path / "x.csv")]) == 2
    assert main(["invert", str(tmp_path / "e.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "expected a .npy file" in err[0] and "empty file" in err[1]


def test_console_script_error_has_no_traceback(tmp_path):
    import os
    from pathlib import Path

    np.save(tmp_path / "bad.npy", np.zeros((2, 7), np.float32))
    env = dict(os.environ, PYTHONPATH=str(Path(vec2text_c.__file__).resolve().parents[1]))
    r = subprocess.run([sys.executable, "-m", "vec2text_c.cli", "invert", str(tmp_path / "bad.npy")],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "[2, 7]" in r.stderr


def test_eval_table_matches_the_metrics_module(tmp_path, capsys, pair, pair_args):
    from vec2text_c import metrics

    shipped = pair
    texts = ["A woman is slicing an onion.", "Who wrote the declaration of independence?", "The team won the final game."]
    src = tmp_path / "ref.txt"
    src.write_text("\n".join(texts) + "\n")
    assert main(["eval", str(src), "--steps", "none,1", "--beams", "2", "-q", "--json", str(tmp_path / "r.json"),
                 *pair_args]) == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [(r["num_steps"], r["sequence_beam_width"]) for r in rows] == [(None, 0), (1, 2)]
    preds = vec2text_c.invert_strings(texts, shipped, num_steps=1, sequence_beam_width=2)
    assert rows[1]["bleu"] == pytest.approx(metrics.bleu(preds, texts), abs=1e-9)
    assert rows[1]["token_f1"] == pytest.approx(100 * metrics.token_f1(preds, texts), abs=1e-9)
    assert f"| 1 | 2 | – | {rows[1]['bleu']:.1f} |" in out
    lower = [t.lower() for t in texts]
    assert rows[1]["token_f1_lower"] == pytest.approx(100 * metrics.token_f1([p.lower() for p in preds], lower), abs=1e-9)
    assert rows[1]["bleu_lower"] == pytest.approx(metrics.bleu([p.lower() for p in preds], lower), abs=1e-9)
    # the JSON keeps what was recovered, text by text, with the cosine of its embedding to the target's
    assert [x["text"] for x in rows[1]["examples"]] == texts
    assert [x["recovered"] for x in rows[1]["examples"]] == preds
    E, P = shipped.embed(texts, 128), shipped.embed(preds, 128)
    cos = (E * P).sum(1) / np.linalg.norm(E, axis=1) / np.linalg.norm(P, axis=1)
    np.testing.assert_allclose([x["cosine"] for x in rows[1]["examples"]], cos, atol=1e-5)
    assert rows[1]["cosine"] == pytest.approx(float(cos.mean()), abs=1e-5)


def test_eval_with_search_reports_both_and_search_is_not_worse(tmp_path, capsys, pair, pair_args):
    shipped = pair
    texts = ["A woman is slicing an onion.", "Who wrote the declaration of independence?", "The team won the final game."]
    src = tmp_path / "ref.txt"
    src.write_text("\n".join(texts) + "\n")
    argv = ["eval", str(src), "--steps", "1", "--beams", "2", "-q", "--json", str(tmp_path / "r.json"), "--search",
            "--also-plain", *pair_args, "--edit-rounds", "2", "--candidates", "3"]
    assert main(argv) == 0
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["search"] for r in rows] == [None, {"candidates": 3, "edit_rounds": 2, "edit_top_k": 4}]
    assert "| 1 | 2 | 3/2/4 |" in capsys.readouterr().out
    want = vec2text_c.invert_strings(texts, shipped, num_steps=1, sequence_beam_width=2,
                                     search=vec2text_c.Search(candidates=3, edit_rounds=2))
    E = shipped.embed(texts, 128)
    P = shipped.embed(want, 128)
    cos = (P * E).sum(1) / (np.linalg.norm(P, axis=1) * np.linalg.norm(E, axis=1))
    assert rows[1]["cosine"] == pytest.approx(float(cos.mean()), abs=1e-6)
    assert main(argv[:-4] + ["--edit-top-k", "0"]) == 2
    assert "--edit-top-k: expected an int in [1, 64], got 0" in capsys.readouterr().err


def test_eval_bad_steps(tmp_path, capsys):
    (tmp_path / "r.txt").write_text("one line of text\n")
    assert main(["eval", str(tmp_path / "r.txt"), "--steps", "1,x"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_train_end_to_end_tiny(tmp_path, shared_data):
    lines = [ln.split("\t")[1] for ln in (shared_data / "sick" / "SICK.txt").read_text().splitlines()[1:500]]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["train", "--corpus", str(tmp_path / "c.txt"), "--workdir", str(tmp_path / "w"), "--out", str(out),
            "--vocab-size", "300", "--d-model", "32", "--heads", "2", "--d-ff", "64", "--layers", "1",
            "--repeat-tokens", "2", "--inverter-steps", "4", "--corrector-steps", "4", "--batch-size", "16",
            "--warmup", "2", "--hypotheses", "64", "--threads", "1", "--no-bf16", "--warm-start", "none",
            "--copy-gate"]
    assert main(argv) == 0
    corr = vec2text_c.load_corrector(out / "inverter", out / "corrector")
    assert corr.dim == 384 and corr.inverter.num_repeat_tokens == 2
    assert corr.corrector.copy_gate is True
    assert len(vec2text_c.invert_strings(["A dog runs."], corr, num_steps=1)) == 1
    # the hypotheses stage again, with the work folder's corrector's own outputs added
    before = int(np.load(tmp_path / "w" / "data" / "hypotheses.npz")["n_train"])
    assert main(["train", "--stage", "hypotheses", "--workdir", str(tmp_path / "w"), "--hypotheses", "64",
                 "--corrected-hypotheses", "40", "--corrected-rounds", "2", "--edited-hypotheses", "30",
                 "--edited-rate", "0.1", "0.3", "--edited-copies", "0.5"]) == 0
    h = np.load(tmp_path / "w" / "data" / "hypotheses.npz")
    assert before + 25 < int(h["n_train"]) <= before + 80 + 30


def test_train_corrected_hypotheses_need_a_corrector(tmp_path, capsys):
    (tmp_path / "w" / "data").mkdir(parents=True)
    (tmp_path / "w" / "data" / "info.json").write_text("{}")
    assert main(["train", "--stage", "hypotheses", "--workdir", str(tmp_path / "w"), "--corrected-hypotheses", "5"]) == 2
    assert "--corrected-hypotheses: needs a corrector" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--edited-rate", "0.5", "0.2"], "--edited-rate: expected LOW HIGH with 0 < LOW <= HIGH <= 1, got 0.5 0.2"),
    (["--edited-rate", "0", "0.2"], "--edited-rate: expected LOW HIGH with 0 < LOW <= HIGH <= 1, got 0 0.2"),
    (["--edited-copies", "1.5"], "--edited-copies: expected a fraction in [0, 1], got 1.5"),
    (["--corrector-blind", "2"], "--corrector-blind: expected a fraction in [0, 1], got 2"),
    (["--corrector-min-cosine", "1"], "--corrector-min-cosine: expected a cosine in [-1, 1), got 1"),
])
def test_train_edited_options_are_checked_before_any_work(tmp_path, capsys, flags, message):
    assert main(["train", "--stage", "hypotheses", "--workdir", str(tmp_path / "w"), "--edited-hypotheses", "5",
                 *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_train_warm_start_shape_is_checked_before_any_work(tmp_path, capsys):
    (tmp_path / "c.txt").write_text("A man is playing a guitar.\n")
    argv = ["train", "--corpus", str(tmp_path / "c.txt"), "--workdir", str(tmp_path / "w"), "--d-model", "32",
            "--heads", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "warm_start: the T5 d_model 32 must equal the BERT hidden size 384 (use warm_start 'none'" in err
    assert not (tmp_path / "w").exists()


def test_train_without_corpus_is_an_error(tmp_path, capsys):
    assert main(["train", "--workdir", str(tmp_path / "w"), "--stage", "prepare"]) == 2
    assert "--corpus" in capsys.readouterr().err


def test_eval_calibration_and_the_demo_prints_it(tmp_path, capsys, shipped):
    import shutil

    from vec2text_c.cli import calibration
    from vec2text_c.models import builtin_model_dir

    texts = ["A woman is slicing an onion.", "Who wrote the declaration of independence?", "The team won the final game."]
    src = tmp_path / "ref.txt"
    src.write_text("\n".join(texts) + "\n")
    cal_path = tmp_path / "cal.json"
    assert main(["eval", str(src), "--steps", "none", "-q", "--calibration", str(cal_path)]) == 0
    cal = json.loads(cal_path.read_text())
    # the same bins from the predictions computed here
    preds = vec2text_c.invert_strings(texts, shipped)
    E, P = shipped.embed(texts, 128), shipped.embed(preds, 128)
    cos = (P * E).sum(1) / (np.linalg.norm(P, axis=1) * np.linalg.norm(E, axis=1))
    want = calibration(list(zip(preds, texts, cos.tolist())), cal["source"])
    assert [(b["low"], b["high"], b["n"], b["example"]) for b in cal["bins"]] == \
        [(b["low"], b["high"], b["n"], b["example"]) for b in want["bins"]]
    np.testing.assert_allclose([b["token_f1"] for b in cal["bins"]], [b["token_f1"] for b in want["bins"]], atol=1e-12)
    assert sum(b["n"] for b in cal["bins"]) == len(texts)
    capsys.readouterr()
    model = tmp_path / "model"
    shutil.copytree(builtin_model_dir(), model)
    (model / "calibration.json").write_text(json.dumps(cal))
    assert main(["demo", "--inverter", str(model / "inverter")] +
                (["--corrector", str(model / "corrector"), "--steps", "1", "--beam", "1"] if (model / "corrector").is_dir()
                 else ["--edit-rounds", "1"])) == 0
    out = capsys.readouterr().out
    assert "What the cosine means here (3 texts of ref.txt" in out
    b0 = cal["bins"][0]
    assert f"cos {b0['low']:.2f}-{b0['high']:.2f}: token F1 {b0['token_f1']:.2f}" in out


def test_demo_of_an_inverter_alone_refines_with_search(capsys, minilm_pair):
    from vec2text_c.cli import DEMO_SENTENCES

    assert main(["demo", "--inverter", str(minilm_pair[0]), "--edit-rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert "this model is an inverter without a corrector" in out
    inv = vec2text_c.load_corrector(minilm_pair[0], None)
    E = inv.embed(DEMO_SENTENCES, 128)
    want = vec2text_c.invert_embeddings(E, inv, search=vec2text_c.Search(candidates=0, edit_rounds=2))
    searched = [ln for ln in out.splitlines() if ln.strip().startswith("search ")]
    assert [ln.split(None, 3)[3] for ln in searched] == want
    assert len([ln for ln in out.splitlines() if ln.strip().startswith("inverter ")]) == len(DEMO_SENTENCES)
    assert main(["demo", "--inverter", str(minilm_pair[0]), "--steps", "2"]) == 2
    assert "this model has no corrector" in capsys.readouterr().err


def test_invert_and_eval_default_to_the_inverter_for_a_model_without_corrector(tmp_path, capsys, minilm_pair):
    inv = vec2text_c.load_corrector(minilm_pair[0], None)
    texts = ["A man is playing a guitar on the stage.", "The stock market fell sharply on Monday."]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n")
    assert main(["invert", str(src), "-o", str(tmp_path / "o.jsonl"), "-q", "--inverter", str(minilm_pair[0])]) == 0
    got = [json.loads(x)["text"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert got == vec2text_c.invert_strings(texts, inv)
    assert main(["eval", str(src), "-q", "--json", str(tmp_path / "r.json"), "--inverter", str(minilm_pair[0])]) == 0
    assert [r["num_steps"] for r in json.loads((tmp_path / "r.json").read_text())] == [None]
    assert main(["invert", str(src), "--steps", "3", "-q", "--inverter", str(minilm_pair[0])]) == 2
    assert "--steps 3: this model has no corrector" in capsys.readouterr().err


def test_version_and_lazy_submodules(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"vec2text-c {vec2text_c.__version__}"
    code = "import vec2text_c; print(vec2text_c.align.Ridge.__name__, vec2text_c.metrics.bleu.__name__, vec2text_c.train.prepare.__name__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert r.stdout.split() == ["Ridge", "bleu", "prepare"], r.stderr
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        vec2text_c.nope  # noqa: B018


@pytest.mark.parametrize("argv, message", [
    (["invert", "{txt}", "-o", "/nonexistent/dir/x.jsonl"], "-o /nonexistent/dir/x.jsonl: the folder /nonexistent/dir does not exist"),
    (["eval", "{txt}", "--json", "/nonexistent/dir/x.json"], "--json /nonexistent/dir/x.json: the folder"),
    (["eval", "{bin}"], "not a UTF-8 text file"),
    (["eval", "{npy}"], "a .npy file holds embeddings; this command reads texts"),
    (["embed", "{npy}", "-o", "{out}"], "a .npy file holds embeddings"),
    (["invert", "{fake_npy}"], "not a .npy file (it does not start with the NumPy magic bytes"),
])
def test_bad_paths_fail_first_with_one_line(tmp_path, capsys, argv, message):
    files = {"txt": tmp_path / "t.txt", "bin": tmp_path / "b.txt", "npy": tmp_path / "e.npy",
             "fake_npy": tmp_path / "f.npy", "out": tmp_path / "o.npy"}
    files["txt"].write_text("A dog runs.\n")
    files["bin"].write_bytes(b"\xff\xfe\x00binary\x00\xff")
    np.save(files["npy"], np.ones((1, 384), np.float32))
    files["fake_npy"].write_text("this is text\n")
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_stop_at_cosine_outside_the_cosine_range_is_refused(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("A dog runs.\n")
    with pytest.raises(SystemExit):
        main(["invert", str(tmp_path / "t.txt"), "--stop-at-cosine", "2"])
    assert "expected a cosine in [-1, 1], got 2" in capsys.readouterr().err


def test_every_cli_option_says_what_it_does():
    """`--help` of every subcommand describes each option (no bare `--embedder EMBEDDER`)."""
    import argparse

    from vec2text_c.cli import build_parser

    blank = []
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) == {"demo", "invert", "embed", "eval", "train", "audit"}
    for name, sub in subs.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip():
                blank.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert blank == []
