"""vec2text_c.audit against the real parts: a Chroma persistent collection and a LanceDB table
built here from shared-corpus texts embedded with the real all-MiniLM-L6-v2, the shipped
model, and vec2text_c's own invert_embeddings / metrics as the reference for every number."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from _audit_fixtures import PERSONAL, corpus_texts, make_chroma

pytest.importorskip("chromadb", reason="the [audit] extra is part of [test]")

import vec2text_c  # noqa: E402
from vec2text_c import audit as A  # noqa: E402
from vec2text_c import metrics  # noqa: E402

N = 120
NOISE = (0.0, 0.01, 0.1)
# correction settings of the audits compared here (the defaults, 20 rounds of beam 4, cost minutes)
STEPS = {"num_steps": 2, "sequence_beam_width": 2}


@pytest.fixture(scope="module")
def corrector():
    return vec2text_c.load_pretrained_corrector("minilm")


@pytest.fixture(scope="module")
def records(shared_data, corrector):
    texts = corpus_texts(shared_data, N)
    vecs = corrector.embed(texts, corrector.max_seq_length)
    ids = [f"rec-{i:03d}" for i in range(len(texts))]
    return ids, vecs, texts


@pytest.fixture(scope="module")
def chroma_dir(tmp_path_factory, records):
    d = tmp_path_factory.mktemp("chroma")
    ids, vecs, texts = records
    make_chroma(d, ids, vecs, texts)
    make_chroma(d, [], None, None, name="empty")
    return d


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, chroma_dir):
    out = tmp_path_factory.mktemp("audit") / "out"
    summary = A.audit(out, **STEPS, chroma=chroma_dir, collection="docs", sample=40, seed=3, noise=NOISE,
                      defence_sample=12, batch_size=8, progress=False)
    return out, summary


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- sensitive items, on hand-written documents ----

def test_sensitive_items_found_in_handwritten_documents():
    assert A.find_items(PERSONAL[0]) == [
        ("phone", "(415) 555-0132"), ("number", "42"), ("name", "John Smith"), ("name", "Oak Street"),
        ("name", "Springfield")]
    assert A.find_items(PERSONAL[1]) == [
        ("email", "anna.berg@example.com"), ("date", "June 5, 2024"), ("number", "77812")]
    assert A.find_items(PERSONAL[2]) == [
        ("date", "2023-11-02"), ("number", "1,250"), ("name", "Maria Garcia"), ("name", "Lisbon")]
    assert A.find_items("Call +44 20 7946 0958 or 05/04/2024. The end.") == [
        ("phone", "+44 20 7946 0958"), ("date", "05/04/2024")]
    assert A.find_items("a plain sentence without anything.") == []
    with pytest.raises(TypeError, match="document"):
        A.find_items(None)


def test_sensitive_items_recovered_case_insensitively_and_by_digits():
    got = A.recovered_items(PERSONAL[0], "john smith lives at 42 oak street, call ( 415 ) 555 - 0132")
    assert [(g["kind"], g["item"], g["recovered"]) for g in got] == [
        ("phone", "(415) 555-0132", True), ("number", "42", True), ("name", "John Smith", True),
        ("name", "Oak Street", True), ("name", "Springfield", False)]
    got = A.recovered_items(PERSONAL[1], "mail anna. berg @ example. com before june 5, 2024 about 778")
    assert [g["recovered"] for g in got] == [True, True, False]  # 778 is not 77812
    got = A.recovered_items(PERSONAL[1], "mail anna.berg@example.org before july 5")
    assert [g["recovered"] for g in got] == [False, False, False]


# ---- the audit on Chroma, against invert_embeddings and metrics ----

def test_chroma_audit_matches_invert_embeddings_and_metrics(local_run, records, corrector):
    out, summary = local_run
    ids, vecs, texts = records
    rows = _rows(out / "results.jsonl")
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    # the seeded sample over the id-sorted store
    want = sorted(np.random.default_rng(3).choice(len(ids), size=40, replace=False))
    assert sorted(r["id"] for r in rows) == [ids[i] for i in want]
    pos = {i: k for k, i in enumerate(ids)}
    rows.sort(key=lambda r: pos[r["id"]])
    idx = [pos[r["id"]] for r in rows]
    recovered = vec2text_c.invert_embeddings(vecs[idx], corrector, **STEPS)
    assert [r["recovered"] for r in rows] == recovered
    emb = corrector.embed(recovered, corrector.max_seq_length)
    cos = (emb * vecs[idx]).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(vecs[idx], axis=1)
    np.testing.assert_allclose([r["cosine"] for r in rows], cos, atol=2e-6)
    refs = [" ".join(texts[i].lower().split()) for i in idx]
    preds = [" ".join(t.lower().split()) for t in recovered]
    assert all(r["lowercased"] is True for r in rows)  # all-MiniLM-L6-v2 is uncased
    np.testing.assert_allclose([r["token_f1"] for r in rows], metrics.token_f1(preds, refs, per_example=True),
                               atol=1e-6)
    np.testing.assert_allclose([r["bleu"] for r in rows], metrics.bleu(preds, refs, per_example=True), atol=1e-4)
    assert [r["exact"] for r in rows] == [p == q for p, q in zip(preds, refs)]
    assert [r["document"] for r in rows] == [texts[i] for i in idx]
    for r in rows:
        assert r["sensitive"] == A.recovered_items(r["document"], r["recovered"])
    h = summary["headline"]
    f1 = np.array([r["token_f1"] for r in rows])
    assert h["records"] == h["inverted"] == 40 and h["errors"] == 0
    assert h["substantially_recovered"] == int((f1 >= 0.5).sum())
    assert h["mean_token_f1"] == pytest.approx(f1.mean(), abs=1e-9)
    assert h["mean_cosine"] == pytest.approx(np.mean([r["cosine"] for r in rows]), abs=1e-9)
    assert sum(summary["distributions"]["cosine"]["counts"]) == 40
    assert json.loads((out / "summary.json").read_text()) == summary


def test_every_sampled_personal_document_is_scored(tmp_path, chroma_dir, records):
    ids, _, texts = records
    personal = [i for i, t in zip(ids, texts) if t in PERSONAL]
    store = A.read_chroma(chroma_dir, "docs")
    rows = [store.ids.index(i) for i in personal]
    s = A.audit(tmp_path / "o", **STEPS, store=store.take(rows), noise=(0.0,), progress=False)
    found = sum(v["found"] for v in s["sensitive"].values())
    assert found == sum(len(A.find_items(t)) for t in PERSONAL)
    got = _rows(tmp_path / "o" / "results.jsonl")
    for kind, v in s["sensitive"].items():
        items = [x for r in got for x in r["sensitive"] if x["kind"] == kind]
        assert v["found"] == len(items) and v["recovered"] == sum(x["recovered"] for x in items)


def test_defence_curve_recall_and_leak(local_run, chroma_dir):
    out, summary = local_run
    curve = summary["defence"]
    assert [c["noise"] for c in curve] == list(NOISE)
    rows = {r["id"]: r for r in _rows(out / "results.jsonl")}
    drows = _rows(out / "defence.jsonl")
    assert len(drows) == 12 * 2 and len({tuple(r["key"]) for r in drows}) == 24
    ids = sorted({r["id"] for r in drows})
    # level 0 is the audit itself on the same records
    assert curve[0]["cosine"] == pytest.approx(np.mean([rows[i]["cosine"] for i in ids]), abs=1e-9)
    for c, level in zip(curve[1:], NOISE[1:]):
        got = [r for r in drows if r["noise"] == level]
        assert c["token_f1"] == pytest.approx(np.mean([r["token_f1"] for r in got]), abs=1e-9)
    assert curve[0][f"recall_at_{A.run.RECALL_AT}"] == 1.0  # a clean vector finds itself
    # retrieval is measured against the whole store, recomputed here from the defence's noise
    store = A.read_chroma(chroma_dir, "docs")
    assert all(c["retrieval_database"] == len(store) == N for c in curve)
    own = np.asarray([store.ids.index(i) for i in ids])
    rows_in_sample = sorted(store.ids.index(i) for i in ids)
    assert [store.ids[k] for k in rows_in_sample] == ids
    noisy = A.run._noisy(store.vectors[own], NOISE[-1], 3)
    assert curve[-1]["recall_at_10"] == A.recall_at(noisy, own, store.vectors)
    assert curve[-1]["cosine"] < curve[0]["cosine"] - 0.2  # λ = 0.1 destroys the leak ...
    assert curve[-1]["token_f1"] < curve[0]["token_f1"]


def test_recall_at_against_a_hand_computed_case():
    db = np.array([[1, 0], [0, 1], [-1, 0], [0.8, 0.6]], dtype=np.float32)
    noisy = np.array([[0.7, 0.71], [1, 0.1]], dtype=np.float32)  # rows 0 and 3 of db, moved
    # query 0 (own row 0): closer are row 3 (0.988 > 0.70) and row 1 (0.71 > 0.70) -> rank 2
    # query 1 (own row 3): row 0 is closer (0.995 vs 0.855) -> rank 1
    own = np.array([0, 3])
    assert A.recall_at(noisy, own, db, k=1) == 0.0
    assert A.recall_at(noisy, own, db, k=2) == 0.5
    assert A.recall_at(noisy, own, db, k=3) == 1.0


# ---- the report ----

class _Report(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tables, self._table, self._row, self._cell = set(), {}, None, None, None
        self.svg_in = {}
        self._open: list[str] = []
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for k in ("src", "href"):
            if k in a and a[k] and not a[k].startswith("#"):
                self.external.append(a[k])
        if tag in ("script", "link", "img", "iframe"):
            self.external.append(tag)
        if tag == "figure":
            self._open.append(a.get("id"))
        if tag == "svg" and self._open:
            self.svg_in[self._open[-1]] = True
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "figure" and self._open:
            self._open.pop()
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_report_holds_the_figures_and_tables_with_the_summary_numbers(local_run):
    from vec2text_c.audit.report import num, pct

    out, s = local_run
    p = _Report()
    p.feed((out / "report.html").read_text(encoding="utf-8"))
    assert not p.external, f"the report must need nothing from outside: {p.external}"
    for sec in ("headline", "sensitive", "distributions", "defence", "examples", "settings"):
        assert sec in p.ids
    for fig in ("fig-cosine", "fig-token-f1", "fig-defence"):
        assert p.svg_in.get(fig), f"{fig} has no inline SVG"
    head = {r[0]: r[1] for r in p.tables["headline-table"][1:]}
    h = s["headline"]
    assert head["records audited"] == str(h["records"])
    assert head["mean cosine (recovered text's embedding vs stored vector)"] == num(h["mean_cosine"])
    assert head["substantially recovered (token F1 ≥ 0.5)"] == f"{h['substantially_recovered']} " \
                                                              f"({pct(h['substantially_recovered_share'])})"
    assert head["mean token F1 (lowercased: the embedder is uncased)"] == num(h["mean_token_f1"])
    sens = {r[0]: r[1:] for r in p.tables["sensitive-table"][1:]}
    for kind, v in s["sensitive"].items():
        assert sens[kind][:3] == [str(v["found"]), str(v["recovered"]), pct(v["share"])]
    d = p.tables["defence-table"][1:]
    assert [r[0] for r in d] == [f"{c['noise']:g}" for c in s["defence"]]
    assert [r[1] for r in d] == [num(c["cosine"]) for c in s["defence"]]
    assert [r[4] for r in d] == [pct(c["recall_at_10"]) for c in s["defence"]]
    best = p.tables["best-table"][1:]
    assert [r[0] for r in best] == [e["id"] for e in s["best"]]
    assert [r[1] for r in best] == [e["document"] for e in s["best"]]
    assert [r[2] for r in best] == [e["recovered"] for e in s["best"]]
    f1s = [e["token_f1"] for e in s["best"]] + [e["token_f1"] for e in s["worst"]]
    assert f1s[:5] == sorted(f1s[:5], reverse=True) and min(f1s[:5]) >= max(f1s[5:])
    settings = {r[0]: r[1] for r in p.tables["settings-table"][1:]}
    assert settings["corrector"] == "minilm" and settings["sample"] == "40" and settings["seed"] == "3"
    assert "vec2text_c" in settings["versions"]


def test_report_escapes_the_stored_documents(tmp_path, corrector):
    doc = "<script>alert('x')</script> & <b>bold</b>"
    v = corrector.embed([doc], corrector.max_seq_length)
    np.save(tmp_path / "v.npy", v)
    (tmp_path / "t.txt").write_text(doc + "\n")
    A.audit(tmp_path / "o", **STEPS, vectors=tmp_path / "v.npy", texts=tmp_path / "t.txt", noise=(0,), progress=False)
    html = (tmp_path / "o" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


# ---- the other stores give the same records ----

def test_lancedb_parquet_and_npy_read_the_same_records(tmp_path, records, chroma_dir):
    import lancedb
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, vecs, texts = records
    order = np.random.default_rng(0).permutation(len(ids))  # stores list records in any order
    table = pa.table({"id": [ids[i] for i in order], "text": [texts[i] for i in order],
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs[order].ravel()), vecs.shape[1])})
    lancedb.connect(str(tmp_path / "lance")).create_table("docs", data=table)
    pq.write_table(table.rename_columns(["key", "content", "embedding"]), tmp_path / "v.parquet")
    np.save(tmp_path / "v.npy", vecs)
    (tmp_path / "v.txt").write_text("\n".join(texts) + "\n")
    ref = A.read_chroma(chroma_dir, "docs")
    assert ref.ids == sorted(ids) and ref.source["kind"] == "chroma"
    for store in (A.read_lancedb(tmp_path / "lance", "docs"),
                  A.read_vectors(tmp_path / "v.parquet", id_column="key")):
        assert store.ids == ref.ids and store.documents == ref.documents
        np.testing.assert_array_equal(store.vectors, vecs[[ids.index(i) for i in store.ids]])
        # Chroma keeps cosine-space vectors re-normalised: equal to the last bits
        np.testing.assert_allclose(store.vectors, ref.vectors, rtol=0, atol=1e-7)
    npy = A.read_vectors(tmp_path / "v.npy", tmp_path / "v.txt")
    assert npy.ids == [f"{i:03d}" for i in range(len(ids))] and npy.documents == texts
    np.testing.assert_array_equal(npy.vectors, vecs)


def test_lancedb_audit_gives_the_chroma_audit_texts(tmp_path, records, local_run):
    import lancedb
    import pyarrow as pa

    ids, vecs, texts = records
    table = pa.table({"id": ids, "text": texts,
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), vecs.shape[1])})
    lancedb.connect(str(tmp_path / "lance")).create_table("docs", data=table)
    A.audit(tmp_path / "o", **STEPS, lancedb=tmp_path / "lance", table="docs", sample=40, seed=3, noise=(0,),
            progress=False)
    got = {r["id"]: r["recovered"] for r in _rows(tmp_path / "o" / "results.jsonl")}
    want = {r["id"]: r["recovered"] for r in _rows(local_run[0] / "results.jsonl")}
    assert got == want


def test_an_aligner_maps_another_space_into_the_model(tmp_path, records, corrector):
    from vec2text_c import align

    ids, vecs, texts = records
    w = np.random.default_rng(5).standard_normal((384, 512)).astype(np.float32) / np.sqrt(384)
    other = vecs @ w  # "another encoder": a 512-d linear image of the MiniLM space
    aligner = align.Ridge(alpha=1e-6).fit(other, vecs)
    aligner.save(tmp_path / "al")
    np.save(tmp_path / "v.npy", other[:10])
    (tmp_path / "t.txt").write_text("\n".join(texts[:10]) + "\n")
    with pytest.raises(ValueError, match="512-dimensional but the model 'minilm' inverts 384.*--aligner"):
        A.audit(tmp_path / "x", vectors=tmp_path / "v.npy", progress=False)
    assert not (tmp_path / "x").exists()  # refused before any work
    A.audit(tmp_path / "o", **STEPS, vectors=tmp_path / "v.npy", texts=tmp_path / "t.txt", aligner=tmp_path / "al",
            noise=(0,), progress=False)
    rows = _rows(tmp_path / "o" / "results.jsonl")
    want = vec2text_c.invert_embeddings(aligner.transform(other[:10]), corrector, **STEPS)
    assert [r["recovered"] for r in rows] == want
    # an aligner whose input is not the store's width
    np.save(tmp_path / "w.npy", vecs[:3])
    with pytest.raises(ValueError, match="384-dimensional but the aligner .* takes 512"):
        A.audit(tmp_path / "y", vectors=tmp_path / "w.npy", aligner=tmp_path / "al", progress=False)


# ---- nothing lost, nothing twice ----

def test_resume_after_the_process_is_killed(tmp_path, chroma_dir, local_run):
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "vec2text_c.cli", "audit", "--chroma", str(chroma_dir), "--collection", "docs",
           "--sample", "40", "--seed", "3", "--noise", "0,0.01,0.1", "--defence-sample", "12", "--batch-size", "2",
           "--steps", str(STEPS["num_steps"]), "--beam", str(STEPS["sequence_beam_width"]),
           "--out", str(out), "-q"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    results = out / "results.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if results.is_file() and results.read_bytes().count(b"\n") >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the audit ended before it could be killed: {proc.stderr.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = results.read_bytes().count(b"\n")
    assert 10 <= partial < 40
    with open(results, "ab") as f:  # as if killed in the middle of a line
        f.write(b'{"id": "rec-0')
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = _rows(results)
    assert len(rows) == 40 and len({x["id"] for x in rows}) == 40
    want = {x["id"]: x for x in _rows(local_run[0] / "results.jsonl")}
    assert {x["id"]: x["recovered"] for x in rows} == {k: v["recovered"] for k, v in want.items()}
    drows = _rows(out / "defence.jsonl")
    assert len(drows) == 24 and len({tuple(x["key"]) for x in drows}) == 24
    assert json.loads((out / "summary.json").read_text())["defence"] == local_run[1]["defence"]


def test_a_results_file_of_another_audit_is_refused(tmp_path, chroma_dir, local_run):
    import shutil

    out = tmp_path / "o"
    shutil.copytree(local_run[0], out)
    with pytest.raises(ValueError, match="holds a different audit .* refusing to resume"):
        A.audit(out, **STEPS, chroma=chroma_dir, collection="docs", sample=40, seed=4, noise=NOISE, defence_sample=12,
                progress=False)
    (out / "settings.json").unlink()  # the results file alone still names its audit
    with pytest.raises(ValueError, match="results.jsonl: holds the results of a different audit"):
        A.audit(out, chroma=chroma_dir, collection="docs", sample=40, seed=3, num_steps=None, noise=(0,),
                progress=False)


def test_a_finished_audit_reruns_without_inverting(local_run, chroma_dir):
    out, summary = local_run
    before = (out / "results.jsonl").read_bytes()
    again = A.audit(out, **STEPS, chroma=chroma_dir, collection="docs", sample=40, seed=3, noise=NOISE,
                    defence_sample=12, batch_size=8, progress=False)
    assert again["timing"]["records_inverted_now"] == 0
    assert (out / "results.jsonl").read_bytes() == before
    assert again["headline"] == summary["headline"] and again["defence"] == summary["defence"]


# ---- bad input ----

def test_nan_vectors_are_reported_per_record_and_the_rest_audited(tmp_path, records, corrector):
    ids, vecs, texts = records
    v = vecs[:6].copy()
    v[2, 5] = np.nan
    v[4] = np.inf
    np.save(tmp_path / "v.npy", v)
    (tmp_path / "t.txt").write_text("\n".join(texts[:6]) + "\n")
    s = A.audit(tmp_path / "o", **STEPS, vectors=tmp_path / "v.npy", texts=tmp_path / "t.txt", noise=(0, 0.1),
                defence_sample=10, progress=False)
    rows = _rows(tmp_path / "o" / "results.jsonl")
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "ok", "error", "ok"]
    assert "NaN or infinity" in rows[2]["error"]
    good = [0, 1, 3, 5]
    assert [rows[i]["recovered"] for i in good] == vec2text_c.invert_embeddings(vecs[good], corrector, **STEPS)
    assert s["headline"]["errors"] == 2 and s["headline"]["inverted"] == 4
    assert [e["id"] for e in s["errors"]] == ["2", "4"]
    assert s["defence"][1]["records"] == 4  # the defence draws from the finite records only
    assert "errors-table" in (tmp_path / "o" / "report.html").read_text()


def test_bad_stores_are_clear_errors(tmp_path, chroma_dir):
    with pytest.raises(FileNotFoundError, match="--chroma .*nowhere: no such folder"):
        A.audit(tmp_path / "o", chroma=tmp_path / "nowhere", collection="docs")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match="not a Chroma persistent directory"):
        A.audit(tmp_path / "o", chroma=tmp_path / "empty_dir", collection="docs")
    with pytest.raises(ValueError, match="--collection 'nope': no such collection .* it holds: docs, empty"):
        A.audit(tmp_path / "o", chroma=chroma_dir, collection="nope")
    with pytest.raises(ValueError, match="--collection 'empty' .* holds no records"):
        A.audit(tmp_path / "o", chroma=chroma_dir, collection="empty")
    with pytest.raises(ValueError, match="give exactly one of"):
        A.audit(tmp_path / "o", chroma=chroma_dir, collection="docs", vectors=tmp_path / "v.npy")
    with pytest.raises(FileNotFoundError, match="--vectors .*v.npy: file not found"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy")
    np.save(tmp_path / "v.npy", np.zeros((3, 384), np.float32))
    (tmp_path / "t.txt").write_text("one\ntwo\n")
    with pytest.raises(ValueError, match="holds 2 texts for 3 vectors"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy", texts=tmp_path / "t.txt")
    np.save(tmp_path / "i.npy", np.zeros((3, 384), np.int32))
    with pytest.raises(ValueError, match="expected floating-point vectors, got dtype int32"):
        A.audit(tmp_path / "o", vectors=tmp_path / "i.npy")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="expected a .npy or .parquet file"):
        A.audit(tmp_path / "o", vectors=tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="--aligner .* not an aligner folder"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy", aligner=tmp_path)
    with pytest.raises(ValueError, match="engine: expected 'local' or 'ray'"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy", engine="spark")
    with pytest.raises(ValueError, match="noise: expected noise levels >= 0"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy", noise=(0, -1))
    with pytest.raises(ValueError, match="sample: expected an int >= 1"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy", sample=0)
    with pytest.raises(FileNotFoundError, match="--corrector 'no-such-model': not a model name"):
        A.audit(tmp_path / "o", vectors=tmp_path / "v.npy", corrector="no-such-model")
    assert not (tmp_path / "o").exists()


def test_parquet_with_duplicate_ids_or_ragged_vectors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a", "a"], "vector": [[0.1] * 4, [0.2] * 4]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match="the id 'a' names more than one record"):
        A.read_vectors(tmp_path / "d.parquet")
    pq.write_table(pa.table({"id": ["a", "b"], "vector": [[0.1] * 4, [0.2] * 3]}), tmp_path / "r.parquet")
    with pytest.raises(ValueError, match="different lengths"):
        A.read_vectors(tmp_path / "r.parquet")
    pq.write_table(pa.table({"id": ["a"], "v": [[0.1] * 4]}), tmp_path / "n.parquet")
    with pytest.raises(ValueError, match="no vector column .* --vector-column"):
        A.read_vectors(tmp_path / "n.parquet")


def test_cli_audit_prints_the_headline_and_writes_the_files(tmp_path, records, corrector):
    from vec2text_c.cli import main

    ids, vecs, texts = records
    np.save(tmp_path / "v.npy", vecs[-3:])
    (tmp_path / "t.txt").write_text("\n".join(texts[-3:]) + "\n")
    r = subprocess.run([sys.executable, "-m", "vec2text_c.cli", "audit", "--vectors", str(tmp_path / "v.npy"),
                        "--texts", str(tmp_path / "t.txt"), "--noise", "0", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    # the defaults with the shipped corrector: vec2text's strongest published setting
    assert (s["settings"]["num_steps"], s["settings"]["sequence_beam_width"]) == (20, 4)
    rows = _rows(tmp_path / "o" / "results.jsonl")
    assert [x["recovered"] for x in rows] == vec2text_c.invert_embeddings(vecs[-3:], corrector, 20, 4)
    assert f"audited 3 of 3 records (0 not inverted); mean cosine {s['headline']['mean_cosine']:.3f}" in r.stdout
    assert f"name: {s['sensitive']['name']['recovered']} of {s['sensitive']['name']['found']} recovered" in r.stdout
    assert main(["audit", "--vectors", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "p")]) == 2


# ---- Ray: a local instance with 2 workers, started and shut down here ----

def test_ray_started_from_a_folder_holding_another_vec2text_c(tmp_path, chroma_dir, local_run, monkeypatch):
    """Ray puts its starting directory first on the workers' path: a source checkout there (no
    built C core) must not replace the package the driver runs, on the engine-started instance."""
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    (tmp_path / "vec2text_c").mkdir()
    (tmp_path / "vec2text_c" / "__init__.py").write_text("raise ImportError('the shadowing checkout')\n")
    monkeypatch.chdir(tmp_path)
    s = A.audit("o", **STEPS, chroma=chroma_dir, collection="docs", sample=40, seed=3, noise=(0,), engine="ray",
                workers=1, batch_size=10, progress=False)
    assert not ray.is_initialized() and Path.cwd() == tmp_path
    assert s["settings"]["engine"]["workers"] == 1
    want = {r["id"]: r["recovered"] for r in _rows(local_run[0] / "results.jsonl")}
    got = {r["id"]: r["recovered"] for r in _rows(tmp_path / "o" / "results.jsonl")}
    assert got == want


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    ray = pytest.importorskip("ray")
    # started from a neutral directory: the repository root (pytest's usual directory) holds the
    # unbuilt source folder, which Ray would put first on its workers' path
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("ray"))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_audit(tmp_path, chroma_dir, local_run, ray_local):
    s = A.audit(tmp_path / "o", **STEPS, chroma=chroma_dir, collection="docs", sample=40, seed=3, noise=NOISE,
                defence_sample=12, engine="ray", batch_size=5, progress=False)
    eng = s["settings"]["engine"]
    assert (eng["engine"], eng["workers"], eng["threads_per_worker"]) == ("ray", 2, 1)
    assert 0 < eng["startup_seconds"] and 0 < eng["work_seconds"] <= s["timing"]["seconds_inverting"]
    want = {r["id"]: r for r in _rows(local_run[0] / "results.jsonl")}
    got = {r["id"]: r for r in _rows(tmp_path / "o" / "results.jsonl")}
    assert {k: v["recovered"] for k, v in got.items()} == {k: v["recovered"] for k, v in want.items()}
    for k in want:
        assert got[k]["cosine"] == pytest.approx(want[k]["cosine"], abs=2e-6)
    dwant = {tuple(r["key"]): r["recovered"] for r in _rows(local_run[0] / "defence.jsonl")}
    dgot = {tuple(r["key"]): r["recovered"] for r in _rows(tmp_path / "o" / "defence.jsonl")}
    assert dgot == dwant


def _worker_pids() -> list[int]:
    import psutil

    pids = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::AuditWorker"):
            pids.append(p.pid)
    return pids


def test_a_killed_ray_worker_loses_and_duplicates_nothing(tmp_path, chroma_dir, local_run, ray_local):
    killed = []

    def kill_one(done, total):
        if not killed and done >= 8:
            pids = _worker_pids()
            assert pids, "no Ray worker process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    A.audit(tmp_path / "o", **STEPS, chroma=chroma_dir, collection="docs", sample=40, seed=3, noise=(0,), engine="ray",
            batch_size=4, progress=False, on_batch=kill_one)
    assert killed
    rows = _rows(tmp_path / "o" / "results.jsonl")
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    want = {r["id"]: r["recovered"] for r in _rows(local_run[0] / "results.jsonl")}
    assert {r["id"]: r["recovered"] for r in rows} == want
