"""Training vec2text inverters and correctors for any embedder (the `[train]` extra: PyTorch +
transformers). The command line is `vec2text-c train`; see pipeline.py for the stages and
the work-folder layout."""
from .corpora import heldout_split, read_corpus
from .pipeline import (ModelShape, add_corrected_hypotheses, add_edited_hypotheses, export, make_hypotheses,
                       prepare, train_corrector, train_inverter)
from .trainer import TrainSettings

__all__ = ["ModelShape", "TrainSettings", "read_corpus", "heldout_split", "prepare", "train_inverter",
           "make_hypotheses", "add_corrected_hypotheses", "add_edited_hypotheses", "train_corrector", "export"]
