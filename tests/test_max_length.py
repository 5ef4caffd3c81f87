"""invert_embeddings(max_length=...): the generation length of the inverter-alone output and of
every correction round (beyond vec2text, whose 128 stays the default). Checked on the tiny
trained MiniLM pair, whose outputs run to the limit: None is the reference's 128, a shorter
limit cuts greedy outputs to a prefix of the long ones, and the ids of every round stay within it."""
from __future__ import annotations

import numpy as np
import pytest

import vec2text_c
from vec2text_c import api

SENTENCES = ["a man is playing a guitar", "two dogs run in the park", "the woman is slicing an onion",
             "a child is riding a horse"]


@pytest.fixture(scope="module")
def pair(minilm_pair):
    inv, cor = minilm_pair
    c = vec2text_c.load_corrector(inv, cor)
    return c, c.embed(SENTENCES, 32)


def _lengths(c, E, **kw) -> list[np.ndarray]:
    """Every round's rows' lengths in ids, the decoder's start token included (as max_length counts)."""
    seen = []
    api._run(E, c, kw.pop("num_steps", None), kw.pop("sequence_beam_width", 0),
             on_round=lambda rnd, beams, ids, lengths, *rest: seen.append(np.array(lengths)), **kw)
    return seen


def test_default_is_the_reference_128(pair):
    c, E = pair
    assert api.MAX_LENGTH == 128
    for steps, beam in ((None, 0), (2, 2)):
        want = vec2text_c.invert_embeddings(E, c, steps, beam)
        assert vec2text_c.invert_embeddings(E, c, steps, beam, max_length=None) == want
        assert vec2text_c.invert_embeddings(E, c, steps, beam, max_length=128) == want
    # this tiny model runs on to the limit: the option has something to cut
    assert max(int(n.max()) for n in _lengths(c, E)) > 40


def test_a_shorter_limit_cuts_greedy_output_to_a_prefix(pair):
    c, E = pair
    long = vec2text_c.invert_embeddings(E, c)
    short = vec2text_c.invert_embeddings(E, c, max_length=10)
    for s, t in zip(short, long):
        assert t.startswith(s.rstrip()), (s, t)
    assert all(int(n.max()) <= 10 for n in _lengths(c, E, max_length=10))


def test_every_correction_round_stays_within_the_limit(pair):
    c, E = pair
    rounds = _lengths(c, E, num_steps=3, sequence_beam_width=2, max_length=12)
    assert len(rounds) == 4  # the step-0 hypothesis and three rounds
    # step 0 is the hypothesis at the corrector's max_seq_length (the reference's), the rounds at max_length
    assert int(rounds[0].max()) == c.max_seq_length
    assert all(int(n.max()) <= 12 for n in rounds[1:])
    # the search's extra candidates and edits (inserts included) too
    searched = _lengths(c, E[:2], num_steps=1, sequence_beam_width=2, max_length=12,
                        search=vec2text_c.Search(candidates=2, edit_rounds=2))
    assert len(searched) >= 2 and all(int(n.max()) <= 12 for n in searched[1:])


@pytest.mark.parametrize("bad", [1, 0, -5, True, 2.5, "33"])
def test_bad_max_length_is_refused_by_name(pair, bad):
    c, E = pair
    with pytest.raises(ValueError, match="max_length: expected None or an int >= 2"):
        vec2text_c.invert_embeddings(E, c, max_length=bad)


def test_a_max_length_beyond_what_the_core_holds_is_refused(pair):
    c, E = pair
    with pytest.raises(ValueError, match="max_length"):
        vec2text_c.invert_embeddings(E, c, max_length=10**8)


def test_cli_invert_and_eval_take_max_length(pair, minilm_pair, tmp_path, capsys):
    import json

    from vec2text_c.cli import main

    c, E = pair
    inv, cor = minilm_pair
    np.save(tmp_path / "e.npy", E)
    model = ["--inverter", str(inv), "--corrector", str(cor)]
    assert main(["invert", str(tmp_path / "e.npy"), *model, "--steps", "2", "--beam", "2", "--max-length", "12",
                 "-o", str(tmp_path / "o.jsonl"), "-q"]) == 0
    got = [json.loads(line)["text"] for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert got == vec2text_c.invert_embeddings(E, c, 2, 2, max_length=12)
    assert got != vec2text_c.invert_embeddings(E, c, 2, 2)
    (tmp_path / "t.txt").write_text("\n".join(SENTENCES) + "\n")
    assert main(["eval", str(tmp_path / "t.txt"), *model, "--steps", "none", "--max-length", "6", "-q",
                 "--json", str(tmp_path / "r.json")]) == 0
    rows = json.loads((tmp_path / "r.json").read_text())
    want = vec2text_c.invert_embeddings(c.embed(SENTENCES, 128), c, max_length=6)
    assert rows[0]["max_length"] == 6 and [e["recovered"] for e in rows[0]["examples"]] == want
    capsys.readouterr()
    assert main(["invert", str(tmp_path / "e.npy"), *model, "--max-length", "1", "-q"]) == 2
    assert "--max-length: expected an integer >= 2, got 1" in capsys.readouterr().err
