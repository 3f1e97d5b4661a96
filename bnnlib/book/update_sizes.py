"""Why one rule's hidden updates are larger than another's: learning rate, weights, rule.

The probed runs record, per layer and epoch (:mod:`bnnlib.diagnostics`, means over the probed
batches, before clipping): ``update_norm`` = ‖lr · G_rule(W)‖_F, the rule's own update at its
own weights W, and ``bp_update_norm`` = ‖lr · G_BP(W)‖_F, the update BP would make at the same
weights, batch and learning rate (a twin of the model stepped by BP). Per weight (÷ √parameters)
they compare across layers. A rule's update over BP's own (each at its own grid-chosen init and
learning rate) is then a product of three factors, each computed from those records:

    U_rule / U_BP = (lr_rule / lr_BP)                          learning rate
                  × (‖G_BP(W_rule)‖ / ‖G_BP(W_BP)‖)            the weights each run reached
                  × (‖G_rule(W_rule)‖ / ‖G_BP(W_rule)‖)         the rule itself

so log10 of the ratio is the sum of three logs: the share of each is how much of the difference
it accounts for. The middle factor compares BP's gradient at the rule's weights with BP's at
BP's own — weights that started from another init scale and moved differently.

Over seeds: the ratio is of the medians of the runs' own updates; the rule factor is the median
of each run's own update over its twin's (the per-run number the chapter's text quotes by its
median and its figure by its mean), and the weights factor what remains, so that the three
multiply to the ratio.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .labels import DATASET_RANK, bn_with, data_label, init_and_lr

FACTORS = ("learning rate", "weights", "rule")


def per_run_layer(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run and layer: its (init, lr) and the per-weight sizes, means over its epochs
    (``frame``: :func:`bnnlib.book.mechanism.diagnostics_frame`, which adds ``update_rms`` and
    ``bp_update_rms``)."""
    keys = ["dataset", "batch_norm", "algorithm", "layer_name", "run_id", "init", "lr"]
    return frame.groupby(keys, as_index=False)[["update_rms", "bp_update_rms"]].mean()


def with_update_ratio(per_run: pd.DataFrame) -> pd.DataFrame:
    """``update_vs_bp`` per run (and layer): its mean update over the twin's mean update — a ratio
    of means, not a mean of per-epoch ratios: the per-run number whose median over seeds is the
    table's rule factor and the chapter's text, and whose mean its figure shows."""
    per_run["update_vs_bp"] = per_run["update_rms"] / per_run["bp_update_rms"].where(per_run["bp_update_rms"] > 0)
    return per_run


def decomposition(frame: pd.DataFrame, layer: str = "block 1", reference: str = "BP") -> pd.DataFrame:
    """Per dataset × BN × rule (other than ``reference``, and moving ``layer``): each rule's (init, lr)
    and the reference's, the ratio of their per-weight updates (medians over seeds) and its
    three factors (:data:`FACTORS`), whose product is the ratio."""
    runs = with_update_ratio(per_run_layer(frame[frame["layer_name"] == layer]))
    medians = runs.groupby(["dataset", "batch_norm", "algorithm"]).agg(
        init=("init", "first"), lr=("lr", "first"), own=("update_rms", "median"),
        rule=("update_vs_bp", "median"), seeds=("run_id", "nunique")).reset_index()
    rows = []
    for (dataset, batch_norm), part in medians.groupby(["dataset", "batch_norm"], sort=False):
        base = part[part["algorithm"] == reference]
        if base.empty:
            continue
        base = base.iloc[0]
        # a rule that does not move this layer (SHALLOW's hidden blocks) has nothing to decompose
        for row in part[(part["algorithm"] != reference) & (part["own"] > 0)].itertuples():
            lr_factor = row.lr / base.lr
            # the rule factor: the median over seeds of each run's own update over its twin's (the
            # chapter's figure and text quote the same number); the weights factor is what remains
            # of the ratio — for one seed exactly ‖G_BP(W_rule)‖ / ‖G_BP(W_BP)‖ at one learning rate
            rule_factor = row.rule
            weights_factor = (row.own / base.own) / (lr_factor * rule_factor) if rule_factor > 0 else np.nan
            rows.append({"dataset": dataset, "batch_norm": batch_norm, "algorithm": row.algorithm,
                         "init": row.init, "lr": row.lr, f"{reference} init": base.init, f"{reference} lr": base.lr,
                         "update": row.own, f"{reference} update": base.own, "ratio": row.own / base.own,
                         "learning rate": lr_factor, "weights": weights_factor, "rule": rule_factor,
                         "seeds": int(row.seeds)})
    return pd.DataFrame(rows)


def shares(table: pd.DataFrame) -> pd.DataFrame:
    """Each factor's share of log10(ratio), in percent (they add to 100 where the ratio is not 1;
    a negative share works against the difference)."""
    logs = np.log10(table[list(FACTORS)].astype(float))
    total = np.log10(table["ratio"].astype(float))
    out = table[["dataset", "batch_norm", "algorithm"]].copy()
    for factor in FACTORS:
        out[factor] = (100 * logs[factor] / total.where(total != 0)).round(1)
    return out


def _times(value: float) -> str:
    """"×6.8", "×0.044", "×101": a factor to two significant digits, never in e-notation."""
    if value >= 10:
        return f"×{value:.0f}"
    # two significant digits in positional notation (":.2g" turns to e-notation below 1e-4)
    return f"×{value:.2g}" if value >= 1e-4 else f"×{value:.{1 - math.floor(math.log10(value))}f}"


def page_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`decomposition` for a page: per setting and rule, both runs' (init, lr), the rule's
    per-weight update over BP's own and the three factors whose product it is."""
    ordered = table.assign(_rank=table["dataset"].map(DATASET_RANK)).sort_values(["_rank", "batch_norm", "algorithm"])
    return pd.DataFrame({
        "data": [data_label(d, b) for d, b in zip(ordered["dataset"], ordered["batch_norm"])],
        "rule": ordered["algorithm"],
        # the ratio and its factors first: on a phone the first columns are what shows
        "rule's update / BP's": ordered["ratio"].map(_times),
        "learning-rate factor": ordered["learning rate"].map(_times),
        "weights factor": ordered["weights"].map(_times),
        "rule factor": ordered["rule"].map(_times),
        "rule's (init, lr)": [init_and_lr(i, lr) for i, lr in zip(ordered["init"], ordered["lr"])],
        "BP's (init, lr)": [init_and_lr(i, lr) for i, lr in zip(ordered["BP init"], ordered["BP lr"])],
    }).reset_index(drop=True)


def finding(table: pd.DataFrame, layer: str = "block 1") -> str:
    """What the decomposition says, per BN setting and rule (spans over the datasets), and which
    factor makes a rule's own update smaller or larger than BP's; computed, never typed."""
    def span(values):
        low, high = _times(min(values)), _times(max(values))
        return low if low == high else f"{low}–{high[1:]}"

    parts = []
    for batch_norm, part in table.groupby("batch_norm", sort=True):
        rules = []
        for algorithm, rows in part.groupby("algorithm", sort=True):
            rules.append(f"{algorithm}'s update of {layer} is {span(rows['ratio'])} BP's own = learning rate "
                         f"{span(rows['learning rate'])} · weights {span(rows['weights'])} · rule {span(rows['rule'])}")
        parts.append(f"{bn_with(batch_norm).capitalize()} BN, " + "; ".join(rules) + ".")
    above = table["rule"] > 1
    if above.all():
        parts.append("In every setting the rule's own factor is above ×1: at the same weights, batch and learning "
                     "rate each alternative moves this layer more than BP would.")
    elif not above.any():
        parts.append("In every setting the rule's own factor is below ×1: at the same weights, batch and learning "
                     "rate each alternative moves this layer less than BP would.")
    shrunk = {}  # (BN, the factors that shrink a rule's update below BP's own in every dataset) → rules
    for (algorithm, batch_norm), rows in table[(table["ratio"] < 1) & above].groupby(["algorithm", "batch_norm"]):
        causes = tuple(f for f in ("learning rate", "weights") if (rows[f] < 1).all())
        if causes:
            shrunk.setdefault((batch_norm, causes), []).append(algorithm)
    for (batch_norm, causes), algorithms in shrunk.items():
        one = len(algorithms) == 1
        its, search = ("its", "its grid search") if one else ("their", "their grid searches")
        named = {"learning rate": f"the learning rate{'' if one else 's'} {search} chose",
                 "weights": f"the weights {its} runs reached (from the init {search} chose)"}
        rules = " and ".join(f"{a}'s" for a in algorithms)
        parts.append(f"{rules} own update{'' if one else 's'} {bn_with(batch_norm)} BN {'is' if one else 'are'} "
                     f"nonetheless smaller than BP's: {' and '.join(named[c] for c in causes)} "
                     f"make{'s' if causes == ('learning rate',) and one else ''} it so, not the rule.")
    return " ".join(parts)
