"""Aligner benchmarks: side-by-side ratios, not timed tests.

    python benchmarks/bench_align.py [ridge] [mlp] [vec2vec] [--rows N] [--repeat R]

ridge:   Ridge fit on rows x 768 -> 384 (float32) against numpy.linalg.lstsq and the NumPy
         normal equations (centre, X^T X + alpha I, X^T Y, solve), same data, same threads.
mlp:     MLP aligner training steps per second against the same network in PyTorch (CPU).
vec2vec: vec2vec training steps per second against the same networks in PyTorch (CPU).
The trained aligners run four ways, alternated: vec2text_c float32 and precision="bfloat16",
PyTorch float32 and PyTorch under torch.autocast("cpu", dtype=torch.bfloat16) (its
mixed-precision mode). Each vec2text_c precision is compared with the PyTorch run of the same
precision, and bfloat16 also with PyTorch float32 (the speed a user gains by switching).
Ratios > 1 mean vec2text_c is faster. Times are the best of --repeat runs.

Each trained-aligner line also gives the matmul work of a step (ours from the trainer's counter,
PyTorch's from torch.utils.flop_counter), the GFLOP/s each side sustains over whole steps, and
the ceilings: the ratio a step made of nothing but matmuls at this CPU's measured matmul peak
(a 2048^3 product, best of both libraries) would reach against PyTorch's step, fp32 against
PyTorch fp32 and bf16 against PyTorch's bf16 autocast.
"""
from __future__ import annotations

import argparse
import os
import time

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_of_all(fns, repeat):
    """Best time of each function, run round-robin so a load change hits all of them."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [min(ts) for ts in times]


def report(label, steps, t_c32, t_cbf, t_t32, t_tbf, flops=None):
    print(f"  {label}: steps/s  vec2text_c f32 {steps / t_c32:7.2f}  bf16 {steps / t_cbf:7.2f} | "
          f"PyTorch f32 {steps / t_t32:7.2f}  bf16 autocast {steps / t_tbf:7.2f}")
    print(f"    ratios: f32 vs PyTorch f32 {t_t32 / t_c32:5.2f}x   bf16 vs PyTorch f32 {t_t32 / t_cbf:5.2f}x   "
          f"bf16 vs PyTorch bf16 autocast {t_tbf / t_cbf:5.2f}x")
    if flops:
        ours, theirs, (peak, peak_bf16) = flops
        print(f"    matmul work per step: vec2text_c {ours / 1e9:.3f} GFLOP, PyTorch {theirs / 1e9:.3f} GFLOP; sustained "
              f"over whole steps: vec2text_c f32 {ours * steps / t_c32 / 1e9:5.1f} GFLOP/s, PyTorch f32 "
              f"{theirs * steps / t_t32 / 1e9:5.1f} GFLOP/s")
        print(f"    ceilings: matmuls alone at the fp32 peak ({peak / 1e9:.0f} GFLOP/s) would be "
              f"{t_t32 / steps / (ours / peak):4.2f}x PyTorch's f32 step; at the bf16 peak "
              f"({peak_bf16 / 1e9:.0f} GFLOP/s), {t_tbf / steps / (ours / peak_bf16):4.2f}x its autocast step")


def matmul_peaks(repeat=5, n=2048):
    """FLOP/s of the best n^3 product, ours (oneDNN) or PyTorch's, same threads: float32, and bf16
    operands with f32 accumulation (where this CPU has bf16 matmuls)."""
    import torch

    from vec2text_c import _core

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    f32 = min(best_of_all([lambda: _core.kernel_gemm(a, b), lambda: torch.mm(at, bt)], repeat))
    bf16 = f32
    if _core.gemm_bf16_supported():
        ah, bh = at.bfloat16(), bt.bfloat16()
        bf16 = min(best_of_all([lambda: _core.kernel_gemm(a, b, bf16=True), lambda: torch.mm(ah, bh)], repeat))
    return 2.0 * n ** 3 / f32, 2.0 * n ** 3 / bf16


def torch_step_flops(fn):
    """Matmul FLOPs PyTorch runs in fn(), counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def bench_ridge(rows, repeat):
    from vec2text_c import align

    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 768), dtype=np.float32)
    Y = (X[:, :384] * 0.5 + 0.1 * rng.standard_normal((rows, 384), dtype=np.float32)).astype(np.float32)
    alpha = 0.1

    def ours():
        return align.Ridge(alpha=alpha).fit(X, Y).W

    def normal_equations():
        mx, my = X.mean(0), Y.mean(0)
        Xc, Yc = X - mx, Y - my
        G = Xc.T @ Xc
        G[np.diag_indices_from(G)] += alpha
        return np.linalg.solve(G, Xc.T @ Yc)

    def lstsq():
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)
        return np.linalg.lstsq(Xc, Yc, rcond=None)[0]

    W = ours()
    ref = normal_equations().astype(np.float64)
    err = np.abs(W - ref).max() / np.abs(ref).max()
    t_ours, t_ne = best_of_all([ours, normal_equations], 2 * repeat)  # alternating: load changes hit both
    t_ls = best_of(lstsq, max(1, repeat // 2))
    print(f"ridge fit {rows} x 768 -> 384 (float32), max rel. diff to NumPy normal equations {err:.1e}")
    print(f"  vec2text_c Ridge       {t_ours * 1e3:9.1f} ms")
    print(f"  NumPy normal equations {t_ne * 1e3:9.1f} ms   ratio {t_ne / t_ours:5.2f}x")
    print(f"  numpy.linalg.lstsq     {t_ls * 1e3:9.1f} ms   ratio {t_ls / t_ours:5.2f}x")


def bench_mlp(repeat, peak, steps=40, batch=256, d_in=768, d_out=384):
    import torch

    from vec2text_c import _core, align

    rng = np.random.default_rng(0)
    n = steps * batch
    X = rng.standard_normal((n, d_in), dtype=np.float32)
    Y = rng.standard_normal((n, d_out), dtype=np.float32)
    print(f"MLP training steps, batch {batch}, {d_in} -> {d_out}, torch threads {torch.get_num_threads()}")
    for hidden, layers in [(d_out // 2, 3), (1024, 2)]:
        model = align.MLP(hidden=hidden, layers=layers, seed=0)
        params = model.init_params(d_in, d_out)
        trainers = {p: _core.MLPTrainer(model.widths, params, precision=p) for p in ("float32", "bfloat16")}

        def ours(p):
            return lambda: trainers[p].train_epoch(X, Y, batch, 1e-3, 0.01, 0.9, 0.999, 1e-8, 0)

        mods = []
        for i, (a, b) in enumerate(zip(model.widths[:-1], model.widths[1:])):
            mods.append(torch.nn.Linear(a, b))
            if i < len(model.widths) - 2:
                mods.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*mods)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
        Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)

        def theirs(autocast):
            def run():
                order = torch.randperm(n)
                for b0 in range(0, n, batch):
                    idx = order[b0:b0 + batch]
                    opt.zero_grad()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                        loss = torch.nn.functional.mse_loss(net(Xt[idx]).float(), Yt[idx])
                    loss.backward()
                    opt.step()
            return run

        fns = [ours("float32"), ours("bfloat16"), theirs(False), theirs(True)]
        f0 = trainers["float32"].matmul_flops
        for fn in fns:
            fn()
        flops = ((trainers["float32"].matmul_flops - f0) / steps, torch_step_flops(theirs(False)) / steps, peak)
        report(f"widths {model.widths}", steps, *best_of_all(fns, repeat), flops)


def bench_vec2vec(repeat, peak, steps=3):
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _v2v_twin import Twin  # the PyTorch twin of the recipe the C trainer is tested against

    from vec2text_c import _core

    rng = np.random.default_rng(0)
    print(f"vec2vec training steps (3 discriminators, cycle pass, VSP), torch threads {torch.get_num_threads()}")
    for d1, d2, width, batch in [(768, 384, 1024, 256), (384, 384, 256, 128)]:
        cfg = dict(d1=d1, d2=d2, d_latent=width, d_hidden=width, d_backbone=width, disc_width=width, warmup=10)
        trainers = {p: _core.Vec2VecTrainer(cfg, seed=0, precision=p) for p in ("float32", "bfloat16")}
        tr = trainers["float32"]
        twin = Twin(cfg, _core.vec2vec_sizes(cfg), tr.params(), tr.stats(), tr.disc_params(),
                    dtype=torch.float32)
        xs = [rng.standard_normal((batch, d1)).astype(np.float32) for _ in range(steps)]
        ys = [rng.standard_normal((batch, d2)).astype(np.float32) for _ in range(steps)]
        xs = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in xs]
        ys = [y / np.linalg.norm(y, axis=1, keepdims=True) for y in ys]

        def ours(p):
            def run():
                for x, y in zip(xs, ys):
                    trainers[p].step(x, y)
            return run

        def theirs(autocast):
            def run():  # the twin's step runs forward and backward in one call, so both sit under autocast
                for x, y in zip(xs, ys):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                        twin.step(x, y, keep_grad=False)
            return run

        fns = [ours("float32"), ours("bfloat16"), theirs(False), theirs(True)]
        f0 = tr.matmul_flops
        for fn in fns:
            fn()
        flops = ((tr.matmul_flops - f0) / steps, torch_step_flops(theirs(False)) / steps, peak)
        report(f"{d1} <-> {d2}, width {width}, batch {batch}", steps, *best_of_all(fns, repeat), flops)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["ridge", "mlp", "vec2vec"])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}")
    if "ridge" in args.what:
        bench_ridge(args.rows, args.repeat)
    peak = None
    if "mlp" in args.what or "vec2vec" in args.what:
        peak = matmul_peaks()
        print(f"matmul peaks (2048^3, best of oneDNN and PyTorch): fp32 {peak[0] / 1e9:.0f} GFLOP/s, "
              f"bf16 {peak[1] / 1e9:.0f} GFLOP/s")
    if "mlp" in args.what:
        bench_mlp(args.repeat, peak)
    if "vec2vec" in args.what:
        bench_vec2vec(args.repeat, peak)


if __name__ == "__main__":
    main()
