"""The paper's three claims, each decided by a statistical test on the project's final runs.

``decide(summaries)`` takes ``{(dataset, batch_norm): run_summary}`` of the final runs and
returns the verdicts as short texts (for ``glue``) and one table of every test performed.
Diverged runs are excluded from every test (and counted in the results pages).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import pandas as pd

from .report import DATASET_NAMES, SETTINGS, holm, with_setting

BINARY_SETTINGS = ["continuous sign", "binary tanh", "binary sign"]  # binary weights and/or activations
CHANCE = 0.1


def _scores(summary: pd.DataFrame, algorithm: str, setting: str) -> np.ndarray:
    frame = with_setting(summary)
    pick = frame[(frame["algorithm"] == algorithm) & (frame["setting"] == setting) & ~frame["diverged"]]
    return pick["best_test_accuracy"].to_numpy(float)


def _where(dataset: str, batch_norm: bool, setting: str) -> str:
    return f"{setting}, {DATASET_NAMES.get(dataset, dataset)} {'with' if batch_norm else 'without'} BN"


def _verdict(adjusted, alpha, need_all: bool) -> str:
    if len(adjusted) == 0 or any(np.isnan(adjusted)):
        return "undecided (too few seeds or no variation for a test)"
    significant = [p < alpha for p in adjusted]
    ok = all(significant) if need_all else any(significant)
    return "supported" if ok else "not supported"


def decide(summaries: Dict[Tuple[str, bool], pd.DataFrame], alpha: float = 0.05) -> Dict:
    import warnings

    with warnings.catch_warnings():
        # near-identical samples (e.g. runs stuck at chance) make scipy warn; the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return _decide(summaries, alpha)


def _decide(summaries: Dict[Tuple[str, bool], pd.DataFrame], alpha: float) -> Dict:
    from scipy import stats

    rows = []
    # C1: DFA and DRTP above chance in every binary setting
    for (dataset, batch_norm), summary in summaries.items():
        for setting in BINARY_SETTINGS:
            for algorithm in ("DFA", "DRTP"):
                x = _scores(summary, algorithm, setting)
                p = float(stats.ttest_1samp(x, CHANCE, alternative="greater").pvalue) if len(x) >= 2 and np.ptp(x) > 0 \
                    else (0.0 if len(x) >= 2 and x.mean() > CHANCE else float("nan"))
                rows.append(dict(claim="C1", dataset=dataset, batch_norm=batch_norm, setting=setting,
                                 comparison=f"{algorithm} > chance", mean=float(np.mean(x)) if len(x) else np.nan,
                                 difference=float(np.mean(x) - CHANCE) if len(x) else np.nan, n=len(x), p=p))
    # C2: an alternative beats BP somewhere binary
    for (dataset, batch_norm), summary in summaries.items():
        for setting in BINARY_SETTINGS:
            bp = _scores(summary, "BP", setting)
            for algorithm in ("DFA", "DRTP"):
                x = _scores(summary, algorithm, setting)
                p = float("nan")
                if len(x) >= 2 and len(bp) >= 2 and (np.ptp(x) > 0 or np.ptp(bp) > 0):
                    p = float(stats.ttest_ind(x, bp, equal_var=False, alternative="greater").pvalue)
                rows.append(dict(claim="C2", dataset=dataset, batch_norm=batch_norm, setting=setting,
                                 comparison=f"{algorithm} > BP", mean=float(np.mean(x)) if len(x) else np.nan,
                                 difference=float(np.mean(x) - np.mean(bp)) if len(x) and len(bp) else np.nan,
                                 n=len(x), p=p))
    # C3: |effect of removing BN| smaller for DFA/DRTP than for BP, paired over dataset × setting
    deltas = []
    datasets = sorted({d for d, _ in summaries})
    for dataset in datasets:
        if (dataset, False) not in summaries or (dataset, True) not in summaries:
            continue
        for setting in SETTINGS:
            delta = {}
            for algorithm in ("BP", "DFA", "DRTP"):
                a = _scores(summaries[(dataset, False)], algorithm, setting)
                b = _scores(summaries[(dataset, True)], algorithm, setting)
                delta[algorithm] = abs(a.mean() - b.mean()) if len(a) and len(b) else np.nan
            deltas.append(dict(dataset=dataset, setting=setting, **delta))
    deltas = pd.DataFrame(deltas)
    for algorithm in ("DFA", "DRTP"):
        p = float("nan")
        if len(deltas) >= 2:
            diff = (deltas["BP"] - deltas[algorithm]).dropna().to_numpy()
            if len(diff) >= 2 and np.any(diff != 0):
                p = float(stats.wilcoxon(diff, alternative="greater").pvalue)
        rows.append(dict(claim="C3", dataset="all", batch_norm=None, setting="all",
                         comparison=f"|Δ BN| BP > {algorithm}",
                         mean=float(deltas[algorithm].median()) if len(deltas) else np.nan,
                         difference=float((deltas["BP"] - deltas[algorithm]).median()) if len(deltas) else np.nan,
                         n=len(deltas), p=p))
    table = pd.DataFrame(rows)
    table["p_holm"] = np.nan
    for claim in ("C1", "C2", "C3"):
        mask = table["claim"] == claim
        table.loc[mask, "p_holm"] = holm(table.loc[mask, "p"].tolist())
    table["significant"] = table["p_holm"] < alpha

    glue = {}
    c1 = table[table["claim"] == "C1"]
    glue["c1_tests"] = str(len(c1))
    glue["c1_verdict"] = _verdict(c1["p_holm"].to_numpy(), alpha, need_all=True)
    weakest = c1.loc[c1["mean"].idxmin()] if c1["mean"].notna().any() else None
    glue["c1_weakest"] = "not measurable" if weakest is None else (
        f"{weakest['comparison'].split()[0]} in {_where(weakest['dataset'], weakest['batch_norm'], weakest['setting'])}, "
        f"mean best test accuracy {100 * weakest['mean']:.2f}%")
    c2 = table[table["claim"] == "C2"]
    glue["c2_tests"] = str(len(c2))
    glue["c2_verdict"] = _verdict(c2["p_holm"].to_numpy(), alpha, need_all=False) if c2["p_holm"].notna().any() \
        else _verdict([], alpha, False)
    hits = c2[c2["significant"]]
    glue["c2_cases"] = "none" if hits.empty else "; ".join(
        f"{r['comparison'].split()[0]} in {_where(r['dataset'], r['batch_norm'], r['setting'])} "
        f"(+{100 * r['difference']:.2f} points, adjusted p = {r['p_holm']:.2g})" for _, r in hits.iterrows())
    focus = c2[(c2["setting"] == "binary sign") & (c2["batch_norm"] == False)]  # noqa: E712
    glue["c2_binary_sign"] = "; ".join(
        f"{r['comparison'].split()[0]} − BP = {100 * r['difference']:+.2f} points on {DATASET_NAMES.get(r['dataset'], r['dataset'])} "
        f"(adjusted p = {r['p_holm']:.2g})" for _, r in focus.iterrows()) or "not measured"
    c3 = table[table["claim"] == "C3"]
    glue["c3_pairs"] = str(len(deltas))
    glue["c3_verdict"] = _verdict(c3["p_holm"].to_numpy(), alpha, need_all=True)
    glue["c3_p"] = ", ".join(f"{r['comparison'].split()[-1]} {r['p_holm']:.2g}" for _, r in c3.iterrows())
    for algorithm in ("BP", "DFA", "DRTP"):
        glue[f"c3_{algorithm.lower()}"] = f"{100 * deltas[algorithm].median():.2f}" if len(deltas) else "n/a"
    return {"glue": glue, "table": table, "bn_deltas": deltas}


CLAIMS = {
    "C1": "binary networks can be trained by DFA and DRTP",
    "C2": "in some binary settings an alternative beats BP",
    "C3": "DFA and DRTP are more tolerant than BP to the presence or absence of BN",
}
VERDICT_KEYS = {"C1": "c1_verdict", "C2": "c2_verdict", "C3": "c3_verdict"}


def _p(value) -> str:
    """p-values in scientific notation, two significant digits (never 'p = 0.0000')."""
    return "–" if value != value else f"{value:.1e}"


def claims_table(verdicts: Dict, budget) -> pd.DataFrame:
    """Claims × evidence × verdict × budget, one row per claim of the paper."""
    table, glue = verdicts["table"], verdicts["glue"]
    rows = []
    for claim, text in CLAIMS.items():
        tests = table[table["claim"] == claim]
        significant = int(tests["significant"].sum())
        rows.append({"claim": f"{claim}: {text}",
                     "evidence": f"{len(tests)} one-sided test(s), Holm-corrected; {significant} significant at 5 %",
                     "verdict": glue[VERDICT_KEYS[claim]],
                     "budget": f"{budget.name} ({budget.epochs} epochs; the paper: 100)"})
    return pd.DataFrame(rows)


def tests_table(verdicts: Dict, claim: str) -> pd.DataFrame:
    """Every test of one claim, for reading: names in words, percent, Holm-adjusted p-values in
    scientific notation (the column that decides), no more columns than fit the page."""
    table = verdicts["table"]
    tests = table[table["claim"] == claim]
    data = ["all" if d == "all" else f"{DATASET_NAMES.get(d, d)}, {'BN' if b else 'no BN'}"
            for d, b in zip(tests["dataset"], tests["batch_norm"])]
    out = pd.DataFrame({
        "data": data, "setting": tests["setting"], "test": tests["comparison"],
        ("mean |Δ| (points)" if claim == "C3" else "mean (%)"): (100 * tests["mean"]).map(lambda v: f"{v:.2f}"),
        "difference (points)": (100 * tests["difference"]).map(lambda v: f"{v:+.2f}"),
        "seeds" if claim != "C3" else "pairs": tests["n"].astype(int),
        "p (Holm)": tests["p_holm"].map(_p),  # the adjusted p decides; the raw one stays in decide()'s table
        "significant": tests["significant"].map({True: "yes", False: "no"}),
    })
    if claim == "C3":
        out = out.drop(columns=["data", "setting"])
    return out.reset_index(drop=True)
