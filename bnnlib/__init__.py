"""bnnlib — the binarised MLP of Crulis et al. (SAC 2023) and its BP, DFA and DRTP trainers."""

from .binarize import ACTIVATIONS, WEIGHT_BINARISERS, sign
from .metrics import classification_metrics, evaluate
from .model import PAPER_HIDDEN_SIZES, BinaryMLP
from .trainers import BP, DFA, DRTP, TRAINERS, Trainer, make_trainer

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "WEIGHT_BINARISERS", "sign", "BinaryMLP", "PAPER_HIDDEN_SIZES",
    "Trainer", "BP", "DFA", "DRTP", "TRAINERS", "make_trainer",
    "classification_metrics", "evaluate",
]
