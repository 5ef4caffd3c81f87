"""What Ray costs and buys for an audit: the same records audited in this process and on Ray
with 1 and 2 workers (1 C core thread each), side by side in one process.

A Chroma collection of --n texts (the shared corpora's AG News titles, embedded with
all-MiniLM-L6-v2) is built in a temporary folder; each engine audits all of it (no defence
curve) into its own folder. Reported per engine: records/s over the whole call, records/s once
the workers have loaded their models, Ray's start-up (ray.init + actors loading the model),
and the overhead ratio: (Ray's time beyond the in-process time) / in-process inversion time.
Recovered texts are checked identical across engines.

Run it on an otherwise idle machine: the in-process engine's OpenMP threads lose most of their
speed when another process competes for the cores.

Usage: python benchmarks/bench_audit.py [--n 64] [--model minilm] [--steps -1] [--beam 0]
       [--batch-size 8] [--json out.json]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("V2T_SHARED_DATA", REPO.parent / "shared" / "data"))


def texts(n: int) -> list[str]:
    out = []
    with open(SHARED / "agnews" / "test.csv", encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[1].strip() and row[1] != "Title":
                out.append(row[1].strip())
    return list(dict.fromkeys(out))[:n]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--model", default="minilm")
    p.add_argument("--steps", type=int, default=None, help="correction steps (-1: inverter alone; default: the model's)")
    p.add_argument("--beam", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)

    import chromadb
    from chromadb.config import Settings

    import vec2text_c
    from vec2text_c import audit as A

    tmp = Path(tempfile.mkdtemp(prefix="bench_audit_"))
    docs = texts(a.n)
    emb = vec2text_c.load_embedder("sentence-transformers/all-MiniLM-L6-v2").encode(docs)
    client = chromadb.PersistentClient(path=str(tmp / "db"), settings=Settings(anonymized_telemetry=False))
    client.create_collection("docs").add(ids=[f"{i:04d}" for i in range(len(docs))], embeddings=emb, documents=docs)
    steps = "default" if a.steps is None else (None if a.steps < 0 else a.steps)
    common = dict(chroma=tmp / "db", collection="docs", corrector=a.model, num_steps=steps, sequence_beam_width=a.beam,
                  noise=(0,), batch_size=a.batch_size, progress=False)

    rows, texts_by = [], {}
    for name, kw in (("in-process", dict(engine="local")), ("ray, 1 worker", dict(engine="ray", workers=1)),
                     ("ray, 2 workers", dict(engine="ray", workers=2))):
        out = tmp / name.replace(" ", "").replace(",", "_")
        t0 = time.perf_counter()
        s = A.audit(out, **common, **kw)
        wall = time.perf_counter() - t0
        eng = s["settings"]["engine"]
        texts_by[name] = {r["id"]: r["recovered"] for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
        rows.append({"engine": name, "records": len(docs), "wall_s": round(wall, 2),
                     "inverting_s": s["timing"]["seconds_inverting"],
                     "startup_s": eng.get("startup_seconds", 0.0), "work_s": eng["work_seconds"],
                     "records_per_s": round(len(docs) / s["timing"]["seconds_inverting"], 2),
                     "records_per_s_after_startup": round(len(docs) / eng["work_seconds"], 2)})
    base = rows[0]["inverting_s"]
    for r in rows:
        r["overhead_vs_in_process"] = round((r["inverting_s"] - base) / base, 3)
        r["speedup_after_startup"] = round(rows[0]["work_s"] / r["work_s"], 3)
    same = all(t == texts_by["in-process"] for t in texts_by.values())
    print(f"{len(docs)} records, model {a.model}, steps {s['settings']['num_steps']}, beam "
          f"{s['settings']['sequence_beam_width']}, batch {a.batch_size}, {os.cpu_count()} CPUs; "
          f"identical texts across engines: {same}")
    cols = ["engine", "inverting_s", "startup_s", "work_s", "records_per_s", "records_per_s_after_startup",
            "overhead_vs_in_process", "speedup_after_startup"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    if a.json:
        a.json.write_text(json.dumps({"rows": rows, "identical": same}, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
