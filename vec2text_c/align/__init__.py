"""Aligners: map embeddings of one encoder into the space of another.

An inverter serves one embedder. To invert another encoder's embeddings, map them into the
inverter's space first, then run the correction loop there.

Supervised aligners learn from paired rows (the same texts embedded by both encoders):
`Ridge`, `Procrustes`, `MLP`. All share `.fit(X, Y)`, `.transform(X)`, `.save(path)` and
`Class.load(path)`; `load(path)` restores any aligner. `evaluate(predicted, target)` scores a
mapping on held-out pairs as the vec2vec paper does.

Unsupervised aligners learn from unpaired rows (different texts in the two spaces):
`MiniVec2Vec` (linear, anchors + Procrustes refinement) and `Vec2Vec` (the published vec2vec
recipe: residual MLP adapters and backbone, three discriminators, GAN, cycle and VSP losses).

Work that grows with the number of rows (Gram and cross products, affine maps, cosine
matrices, the training steps of MLP and Vec2Vec) runs in the C core on oneDNN with the GIL
released; the small d x d factorisations (Cholesky, SVD) use LAPACK through NumPy.
`MLP(precision="bfloat16")` and `Vec2Vec(precision="bfloat16")` train with mixed-precision
matmuls (bf16 operands, fp32 accumulation and weights) on CPUs with AVX512-BF16 or AMX.
"""
from __future__ import annotations

from .base import Aligner, Evaluation, evaluate, load
from .linear import Procrustes, Ridge
from .minivec2vec import MiniVec2Vec
from .mlp import MLP
from .vec2vec import Vec2Vec

__all__ = ["Aligner", "Evaluation", "evaluate", "load", "Ridge", "Procrustes", "MLP", "MiniVec2Vec", "Vec2Vec"]
