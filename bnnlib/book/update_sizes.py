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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FACTORS = ("learning rate", "weights", "rule")


def per_run_layer(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run and layer: its (init, lr) and the per-weight sizes, means over its epochs
    (``frame``: :func:`bnnlib.book.mechanism.diagnostics_frame`, which adds ``update_rms`` and
    ``bp_update_rms``)."""
    keys = ["dataset", "batch_norm", "algorithm", "layer_name", "run_id", "init", "lr"]
    return frame.groupby(keys, as_index=False)[["update_rms", "bp_update_rms"]].mean()


def decomposition(frame: pd.DataFrame, layer: str = "block 1", reference: str = "BP") -> pd.DataFrame:
    """Per dataset × BN × rule (other than ``reference``, and moving ``layer``): each rule's (init, lr)
    and the reference's, the ratio of their per-weight updates (medians over seeds) and its
    three factors (:data:`FACTORS`), whose product is the ratio."""
    runs = per_run_layer(frame[frame["layer_name"] == layer])
    medians = runs.groupby(["dataset", "batch_norm", "algorithm"]).agg(
        init=("init", "first"), lr=("lr", "first"), own=("update_rms", "median"),
        bp_here=("bp_update_rms", "median"), seeds=("run_id", "nunique")).reset_index()
    rows = []
    for (dataset, batch_norm), part in medians.groupby(["dataset", "batch_norm"], sort=False):
        base = part[part["algorithm"] == reference]
        if base.empty:
            continue
        base = base.iloc[0]
        # a rule that does not move this layer (SHALLOW's hidden blocks) has nothing to decompose
        for row in part[(part["algorithm"] != reference) & (part["own"] > 0)].itertuples():
            lr_factor = row.lr / base.lr
            # BP's update at the rule's weights, at BP's learning rate: ‖G_BP(W_rule)‖ · lr_BP
            weights_factor = (row.bp_here / row.lr) / (base.own / base.lr)
            rule_factor = row.own / row.bp_here if row.bp_here > 0 else np.nan
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
