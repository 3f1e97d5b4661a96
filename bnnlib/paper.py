"""The paper's own reference choices, as data (from ../shared/paper/PROTOCOL.md).

These are the (init, lr) the paper selected by its MNIST grid search; the book shows them
beside the project's own selection. The paper's accuracies are deliberately not here: the
reproduction stands on its own runs.
"""

from __future__ import annotations

import pandas as pd

_ROWS = [
    # batch_norm, algorithm, weights, activation, init, lr
    (False, "DFA", "continuous", "sign", 0.1, 1e-4), (False, "DRTP", "continuous", "sign", 0.1, 1e-4),
    (False, "BP", "continuous", "sign", 0.1, 1e-4), (False, "DFA", "continuous", "tanh", 0.001, 1e-4),
    (False, "DRTP", "continuous", "tanh", 0.001, 1e-4), (False, "BP", "continuous", "tanh", 0.1, 1e-4),
    (False, "DFA", "binary", "sign", 0.001, 1e-6), (False, "DRTP", "binary", "sign", 0.001, 1e-5),
    (False, "BP", "binary", "sign", 0.1, 1e-6), (False, "DFA", "binary", "tanh", 0.1, 1e-4),
    (False, "DRTP", "binary", "tanh", 0.001, 1e-5), (False, "BP", "binary", "tanh", 0.1, 1e-4),
    (True, "DFA", "continuous", "sign", 0.1, 1e-4), (True, "DRTP", "continuous", "sign", 0.001, 1e-4),
    (True, "BP", "continuous", "sign", 0.001, 1e-5), (True, "DFA", "continuous", "tanh", 0.1, 1e-4),
    (True, "DRTP", "continuous", "tanh", 0.001, 1e-4), (True, "BP", "continuous", "tanh", 0.001, 1e-5),
    (True, "DFA", "binary", "sign", 0.001, 1e-4), (True, "DRTP", "binary", "sign", 0.1, 1e-4),
    (True, "BP", "binary", "sign", 0.001, 1e-4), (True, "DFA", "binary", "tanh", 0.001, 1e-4),
    (True, "DRTP", "binary", "tanh", 0.001, 1e-4), (True, "BP", "binary", "tanh", 0.001, 1e-4),
]


def paper_selection(batch_norm: bool) -> pd.DataFrame:
    """The paper's selected (init, lr) per algorithm × weights × activation (MNIST grid search)."""
    table = pd.DataFrame(_ROWS, columns=["batch_norm", "algorithm", "weights", "activation", "init", "lr"])
    return table[table["batch_norm"] == batch_norm].drop(columns="batch_norm").reset_index(drop=True)
