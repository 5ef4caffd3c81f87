"""The vec2text-c command line: its subcommands against the library, and its errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

import vec2text_c
from vec2text_c.cli import main


def test_demo_prints_unit_norm_embeddings(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "shape (4, 384)" in out
    norms = [float(line.split()[1]) for line in out.splitlines() if line.strip().startswith("norm ")]
    assert len(norms) == 4
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


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
    for sub in ([], ["demo"], ["embed"]):
        r = subprocess.run([sys.executable, "-m", "vec2text_c.cli", *sub, "--help"], capture_output=True, text=True,
                           cwd=tmp_path, env=env)
        assert r.returncode == 0 and "usage: vec2text-c" in r.stdout, r.stderr
