"""bnnlib — the binarised MLP of Crulis et al. (SAC 2023) and its BP, DFA and DRTP trainers."""

import os

# Sweeps share their machine with tests, builds and other runs. libgomp (torch's OpenMP) lets a
# waiting thread spin 300 000 times before it sleeps, so a run whose second core is taken
# spends its time spinning: a BP epoch took 2.6 s alone and 9.0 s beside a busy loop here; with
# 1 000 spins 5.1 s, and nothing lost alone (benchmarks/train_speed.py measures it). libgomp
# reads this when torch is first imported: it takes effect when bnnlib is imported first (the
# CLI, the book), and an explicit setting always wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from .binarize import ACTIVATIONS, WEIGHT_BINARISERS, sign
from .metrics import classification_metrics, evaluate
from .model import PAPER_HIDDEN_SIZES, BinaryMLP
from .rules.bp import BP
from .rules.dfa import DFA
from .rules.drtp import DRTP
from .trainers import TRAINERS, Trainer, make_trainer

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "WEIGHT_BINARISERS", "sign", "BinaryMLP", "PAPER_HIDDEN_SIZES",
    "Trainer", "BP", "DFA", "DRTP", "TRAINERS", "make_trainer",
    "classification_metrics", "evaluate",
]
