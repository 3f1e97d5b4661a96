"""The claims chapter's decisions, on synthetic final-run summaries whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from bnnlib.book.claims import decide

SETTINGS = [("continuous", "tanh"), ("continuous", "sign"), ("binary", "tanh"), ("binary", "sign")]


def _summaries(accuracy, seeds=10):
    """{(dataset, batch_norm): summary} with best_test_accuracy = accuracy(...) + small noise."""
    rng = np.random.default_rng(0)
    out = {}
    for dataset in ("mnist", "fashion-mnist"):
        for batch_norm in (False, True):
            rows = [dict(algorithm=algorithm, weights=weights, activation=activation, seed=seed, diverged=False,
                         best_test_accuracy=accuracy(algorithm, weights, activation, batch_norm)
                         + rng.normal(0, 0.002))
                    for algorithm in ("BP", "DFA", "DRTP") for weights, activation in SETTINGS
                    for seed in range(seeds)]
            out[(dataset, batch_norm)] = pd.DataFrame(rows)
    return out


def paper_like(algorithm, weights, activation, batch_norm):
    if algorithm == "BP":  # BP needs BN, and struggles most with binary weights + sign activations
        if batch_norm:
            return 0.95
        return 0.40 if (weights, activation) == ("binary", "sign") else 0.80
    return 0.95 if batch_norm else 0.94


def all_equal(algorithm, weights, activation, batch_norm):
    return 0.9


def test_paper_like_data_supports_every_claim():
    verdicts = decide(_summaries(paper_like))
    glue = verdicts["glue"]
    assert glue["c1_verdict"] == glue["c2_verdict"] == glue["c3_verdict"] == "supported"
    assert "DFA in binary sign, MNIST without BN" in glue["c2_cases"]
    assert "MNIST with BN" not in glue["c2_cases"]  # equal there: no significant case
    assert glue["c3_pairs"] == "8" and float(glue["c3_bp"]) > float(glue["c3_dfa"])


def test_equal_algorithms_support_neither_c2_nor_c3():
    glue = decide(_summaries(all_equal))["glue"]
    assert glue["c1_verdict"] == "supported"  # 90% is far above chance
    assert glue["c2_verdict"] == "not supported" and glue["c2_cases"] == "none"
    assert glue["c3_verdict"] == "not supported"
    assert glue["c3_p"].startswith("DFA ") and ", DRTP " in glue["c3_p"]


def test_diverged_runs_are_left_out_of_every_test():
    summaries = _summaries(paper_like)
    frame = summaries[("mnist", False)]
    dfa_binary_sign = frame.index[(frame["algorithm"] == "DFA") & (frame["weights"] == "binary")
                                  & (frame["activation"] == "sign")]
    frame.loc[dfa_binary_sign[0], ["best_test_accuracy", "diverged"]] = [0.0, True]
    table = decide(summaries)["table"]
    row = table[(table["claim"] == "C2") & (table["dataset"] == "mnist") & (table["batch_norm"] == False)  # noqa: E712
                & (table["setting"] == "binary sign") & (table["comparison"] == "DFA > BP")].iloc[0]
    assert row["n"] == 9 and row["mean"] == pytest.approx(0.94, abs=0.003)
