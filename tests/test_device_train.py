"""tools/device_train.py, the one-shot accelerator run, end to end on the CPU with a 30-second
budget (so that its first run on a device is not its first run): pack here, train in a process
that cannot import vec2text_c (as on the device, which has no build of it), unpack, export,
and run the result on the C core exactly as PyTorch does."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import vec2text_c
from vec2text_c.train.pipeline import ModelShape, _load_module, export, prepare

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "device_train.py"
SHAPE = ModelShape(vocab_size=400, d_model=384, num_heads=12, d_ff=64, num_layers=1, num_decoder_layers=1,
                   feed_forward_proj="gelu", num_repeat_tokens=4, lowercase=True)
# the device has no vec2text_c build: make importing it fail in the training process
NO_PACKAGE = ("import runpy, sys; sys.modules['vec2text_c'] = None; sys.argv = [sys.argv[1]] + sys.argv[2:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")


def _tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("device_train_tool", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def packed(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("device")
    lines = []
    for line in (shared_data / "sick" / "SICK.txt").read_text(encoding="utf-8").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 3:
            lines.append(cols[1])
    (root / "corpus.txt").write_text("\n".join(list(dict.fromkeys(lines))[:600]) + "\n")
    work = root / "work"
    prepare([root / "corpus.txt"], work, shape=SHAPE, heldout_fraction=0.1, val_size=20)
    sizes = _tool().pack(work, root / "pack")
    return root, work, sizes


def test_pack_is_small_and_its_data_match_prepare(packed):
    root, work, sizes = packed
    tool = _tool()
    assert sizes["total"] < 40 * 2**20  # the word rows in use only, bf16
    texts = (work / "data" / "train.txt").read_text().splitlines() + (work / "data" / "val.txt").read_text().splitlines()
    ids, lengths = tool.encode_targets(texts, root / "pack" / "t5" / "spiece.model", SHAPE.max_seq_length, True)
    d = np.load(work / "data" / "ids.npz")
    assert (ids == d["ids"]).all() and (lengths == d["lengths"]).all()
    # the packed bf16 embedder gives the embeddings prepare computed with the C core
    E = tool.DeviceEmbedder(root / "pack" / "bert", torch.device("cpu")).encode(texts[:64])
    ref = np.load(work / "data" / "embeddings.npy")[:64]
    cos = (E * ref).sum(1) / (np.linalg.norm(E, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() > 0.999, cos.min()


def test_train_in_30_seconds_without_the_package_then_unpack_and_run_on_the_core(packed):
    root, work, _ = packed
    out = root / "OUT"
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", NO_PACKAGE, str(SCRIPT), "train", "--pack", str(root / "pack"), "--out",
                        str(out), "--minutes", "0.5", "--device", "cpu", "--batch-size", "16", "--eval-every", "10",
                        "--gate-texts", "8"], capture_output=True, text=True, cwd=root, timeout=300)
    wall = time.time() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    # the budget covers the script's own work; the rest is the interpreter and torch starting
    # (slower when the machine is loaded, hence the margin)
    assert wall < 60, f"the 30-second budget took {wall:.0f} s"
    files = sorted(p for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] >= 10 and summary["seconds"] <= 30 and summary["start"].startswith("warm start")
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert any("gate_cosine" in x for x in log) and any("val_loss" in x for x in log)
    assert summary["gate_cosine"] == max(x["gate_cosine"] for x in log if "gate_cosine" in x)

    # back here: the weights become the work folder's inverter; export runs it on the C core
    _tool().unpack(out, work)
    model = _load_module(work, "inverter")
    export(work, root / "export", bf16=False, only=("inverter",))
    inv = vec2text_c.models.read_checkpoint(root / "export" / "inverter", "inverter")
    t5dir = vec2text_c.models._t5_dir(str(inv.config["model_name_or_path"]), inv.path)
    t5 = vec2text_c.models._load_t5(inv, t5dir, str(inv.config["model_name_or_path"]))
    core = vec2text_c._core.Inverter(str(inv.weights), t5._core, inv.num_repeat_tokens)
    E = np.load(work / "data" / "embeddings.npy")[:8]
    with torch.no_grad():
        x, mask = model.encoder_inputs(torch.from_numpy(E))
        want = model.encoder_decoder.generate(inputs_embeds=x, attention_mask=mask, max_length=32, num_beams=1,
                                              do_sample=False).numpy()
    assert t5.generate(inputs_embeds=core.inputs(E), max_length=32).tolist() == want.tolist()
    # the device's bf16 weights are what was installed
    from safetensors.torch import load_file

    dev = {}
    for f in sorted(out.glob("inverter-*.safetensors")):
        dev.update(load_file(str(f)))
    for k, v in model.state_dict().items():
        if not k.endswith("embed_tokens.weight"):
            torch.testing.assert_close(v, dev[k].float(), rtol=0, atol=0)
