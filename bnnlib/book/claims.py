"""The paper's three claims, each decided by a statistical test on the project's final runs.

``decide(summaries)`` takes ``{(dataset, batch_norm): run_summary}`` of the final runs and
returns the verdicts as short texts (for ``glue``) and one table of every test performed.
Diverged runs are excluded from every test (and counted in the results pages).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import pandas as pd

from .labels import ALGORITHMS, ALTERNATIVES, DATASET_RANK, SETTINGS, bn_with, dataset_name, with_setting
from .paper import MEASUREMENT_UNCERTAINTY, paper_final_medians, paper_final_quartiles
from .stats import holm, p_text

BINARY_SETTINGS = ["continuous sign", "binary tanh", "binary sign"]  # binary weights and/or activations
CHANCE = 0.1


def _scores(summary: pd.DataFrame, algorithm: str, setting: str) -> np.ndarray:
    frame = with_setting(summary)
    pick = frame[(frame["algorithm"] == algorithm) & (frame["setting"] == setting) & ~frame["diverged"]]
    return pick["best_test_accuracy"].to_numpy(float)


def _where(dataset: str, batch_norm: bool, setting: str) -> str:
    return f"{setting}, {dataset_name(dataset)} {bn_with(batch_norm)} BN"


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
            for algorithm in ALTERNATIVES:
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
            for algorithm in ALTERNATIVES:
                x = _scores(summary, algorithm, setting)
                p = float("nan")
                if len(x) >= 2 and len(bp) >= 2 and (np.ptp(x) > 0 or np.ptp(bp) > 0):
                    p = float(stats.ttest_ind(x, bp, equal_var=False, alternative="greater").pvalue)
                rows.append(dict(claim="C2", dataset=dataset, batch_norm=batch_norm, setting=setting,
                                 comparison=f"{algorithm} > BP", mean=float(np.mean(x)) if len(x) else np.nan,
                                 difference=float(np.mean(x) - np.mean(bp)) if len(x) and len(bp) else np.nan,
                                 n=len(x), p=p))
    # C3: |effect of removing BN| smaller for DFA/DRTP than for BP, paired over dataset × setting
    # (the test pairs means over seeds; the comparison with the paper's medians uses medians)
    deltas = deltas_of(central_values(summaries, statistic="mean"))
    rows += c3_tests(deltas)
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
        f"mean best test accuracy {100 * weakest['mean']:.2f} %")
    c2 = table[table["claim"] == "C2"]
    glue["c2_tests"] = str(len(c2))
    glue["c2_verdict"] = _verdict(c2["p_holm"].to_numpy(), alpha, need_all=False) if c2["p_holm"].notna().any() \
        else _verdict([], alpha, False)
    hits = c2[c2["significant"]]
    glue["c2_cases"] = "none" if hits.empty else "; ".join(
        f"{r['comparison'].split()[0]} in {_where(r['dataset'], r['batch_norm'], r['setting'])} "
        f"(+{100 * r['difference']:.2f} points, adjusted p = {p_text(r['p_holm'])})" for _, r in hits.iterrows())
    focus = c2[(c2["setting"] == "binary sign") & (c2["batch_norm"] == False)]  # noqa: E712
    glue["c2_binary_sign"] = "; ".join(
        f"{r['comparison'].split()[0]} − BP = {100 * r['difference']:+.2f} points on {dataset_name(r['dataset'])} "
        f"(adjusted p = {p_text(r['p_holm'])})" for _, r in focus.iterrows()) or "not measured"
    c3 = table[table["claim"] == "C3"]
    glue["c3_pairs"] = str(len(deltas))
    glue["c3_verdict"] = _verdict(c3["p_holm"].to_numpy(), alpha, need_all=True)
    glue["c3_p"] = ", ".join(f"{r['comparison'].split()[-1]} {p_text(r['p_holm'])}" for _, r in c3.iterrows())
    for algorithm in ALGORITHMS:
        glue[f"c3_{algorithm.lower()}"] = f"{100 * deltas[algorithm].median():.2f}" if len(deltas) else "n/a"
    return {"glue": glue, "table": table, "bn_deltas": deltas}


def c3_tests(deltas: pd.DataFrame) -> list:
    """C3's two tests on a table of |Δ BN| per dataset × setting (columns BP, DFA, DRTP): one-sided
    Wilcoxon signed-rank tests that BP's |Δ| exceeds DFA's, and DRTP's (raw p; Holm follows)."""
    from scipy import stats

    rows = []
    for algorithm in ALTERNATIVES:
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
    return rows


CLAIMS = {
    "C1": "binary networks can be trained by DFA and DRTP",
    "C2": "in some binary settings an alternative beats BP",
    "C3": "DFA and DRTP are more tolerant than BP to the presence or absence of BN",
}
VERDICT_KEYS = {"C1": "c1_verdict", "C2": "c2_verdict", "C3": "c3_verdict"}


# ---------------------------------------------------------------------- central values: ours and the paper's
PAIR_SETTINGS = SETTINGS  # C3 pairs every dataset with each of the four settings


def central_values(summaries: Dict[Tuple[str, bool], pd.DataFrame], statistic: str = "median") -> pd.DataFrame:
    """Our best test accuracy over seeds per dataset × BN × rule × setting (diverged runs left
    out): by default the median — the statistic the paper's box plots give, so the two compare
    like for like — or the mean (``statistic="mean"``, what C3's test pairs)."""
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic: {statistic!r} is not one of 'median', 'mean'")
    rows = []
    for (dataset, batch_norm), summary in summaries.items():
        frame = with_setting(summary[~summary["diverged"]])
        for (algorithm, setting), part in frame.groupby(["algorithm", "setting"], observed=True):
            scores = part["best_test_accuracy"]
            rows.append(dict(dataset=dataset, batch_norm=batch_norm, algorithm=algorithm, setting=str(setting),
                             value=float(scores.median() if statistic == "median" else scores.to_numpy(float).mean())))
    return pd.DataFrame(rows, columns=["dataset", "batch_norm", "algorithm", "setting", "value"])


def paper_values(datasets) -> pd.DataFrame:
    """The paper's medians (measured from its box plots' pixels, section 1b) in :func:`central_values`' layout."""
    medians = with_setting(paper_final_medians())
    medians = medians[medians["dataset"].isin(list(datasets))]
    return pd.DataFrame({"dataset": medians["dataset"], "batch_norm": medians["batch_norm"],
                         "algorithm": medians["algorithm"], "setting": medians["setting"].astype(str),
                         "value": medians["paper_median"]}).reset_index(drop=True)


def deltas_of(values: pd.DataFrame) -> pd.DataFrame:
    """|Δ BN| — the change of the central value when BN is removed — per dataset × setting (rows)
    and rule (columns BP, DFA, DRTP)."""
    table = values.pivot_table(index=["dataset", "setting", "algorithm"], columns="batch_norm", values="value")
    if False not in table.columns or True not in table.columns:
        return pd.DataFrame(columns=["dataset", "setting", "BP", "DFA", "DRTP"])
    # a dataset × setting recorded with only one BN setting is not a pair
    deltas = (table[False] - table[True]).abs().unstack("algorithm") \
        .reindex(columns=list(ALGORITHMS)).dropna(how="all").reset_index()
    deltas.columns.name = None
    order = {s: i for i, s in enumerate(PAIR_SETTINGS)}
    rank = {"setting": order, "dataset": DATASET_RANK}  # MNIST first, as every page lists the datasets
    return deltas.sort_values(["dataset", "setting"], key=lambda c: c.map(rank[c.name])) \
        .reset_index(drop=True)


def _leads(values: pd.DataFrame) -> pd.DataFrame:
    """DFA's and DRTP's central value minus BP's (columns DFA, DRTP), per binary cell
    (dataset × BN × setting)."""
    binary = values[values["setting"].isin(BINARY_SETTINGS)]
    keys = ["dataset", "batch_norm", "setting"]
    bp = binary[binary["algorithm"] == "BP"].set_index(keys)["value"]
    return pd.concat([(binary[binary["algorithm"] == a].set_index(keys)["value"] - bp).dropna().rename(a)
                      for a in ALTERNATIVES], axis=1)


#: the number behind each claim's verdict, after how many of its tests are significant (the
#: Introduction's bullets and the Conclusions' table), from the verdicts' glue
CLAIM_DETAIL = {
    "C1": lambda glue: (f"the weakest case is {glue['c1_weakest']}, against chance's 10 %"
                        + (f" and, a harder bar, {glue['c1_shallow']}" if glue.get("c1_shallow") else "")),
    "C2": lambda glue: f"with binary weights, sign activations and no BN, where BP struggles most: {glue['c2_binary_sign']}",
    "C3": lambda glue: (f"the change of mean accuracy when BN is removed, |Δ BN|, has a median over the "
                        f"dataset × setting pairs of BP {glue['c3_bp']}, DFA {glue['c3_dfa']} and DRTP "
                        f"{glue['c3_drtp']} points"),
}


def evidence(values: pd.DataFrame) -> Dict[str, str]:
    """Each claim's evidence in one phrase, from central values alone (the paper's or ours)."""
    binary = values[values["setting"].isin(BINARY_SETTINGS)]
    alternatives = binary[binary["algorithm"].isin(list(ALTERNATIVES))]
    lowest = alternatives.loc[alternatives["value"].idxmin()] if len(alternatives) else None
    c1 = "–" if lowest is None else (
        f"lowest DFA/DRTP median in a binary setting {100 * lowest['value']:.1f} % ({lowest['algorithm']}, "
        f"{_where(lowest['dataset'], lowest['batch_norm'], lowest['setting'])}); chance {100 * CHANCE:.0f} %")
    lead = _leads(values)
    ahead = int((lead.max(axis=1) > 0).sum()) if len(lead) else 0
    if len(lead):
        where, best = lead.max(axis=1).idxmax(), lead.max(axis=1).max()
        c2 = (f"DFA or DRTP median above BP's in {ahead} of {len(lead)} binary cells; largest lead of a median "
              f"{100 * best:+.2f} points ({_where(*where)})")
    else:
        c2 = "–"
    deltas = deltas_of(values)
    if len(deltas):
        above = {a: int((deltas["BP"] > deltas[a]).sum()) for a in ALTERNATIVES}
        c3 = (f"BP's |Δ BN| above DFA's in {above['DFA']} of {len(deltas)} pairs, above DRTP's in "
              f"{above['DRTP']}; median over the pairs of |Δ BN| of the medians: BP {100 * deltas['BP'].median():.2f}, "
              f"DFA {100 * deltas['DFA'].median():.2f}, DRTP {100 * deltas['DRTP'].median():.2f} points")
    else:
        c3 = "–"
    return {"C1": c1, "C2": c2, "C3": c3}


def paper_verdicts(datasets, alpha: float = 0.05) -> Dict[str, str]:
    """What the paper's own medians say: C1 and C2 descriptively (one median per configuration
    leaves nothing to test across seeds), C3 by the very test applied to our runs."""
    values = paper_values(datasets)
    binary = values[values["setting"].isin(BINARY_SETTINGS)]
    alternatives = binary[binary["algorithm"].isin(list(ALTERNATIVES))]["value"]
    ahead = bool((_leads(values).max(axis=1) > 0).any())
    c3 = pd.DataFrame(c3_tests(deltas_of(values)))
    c3_holm = holm(c3["p"].tolist())
    tests = ", ".join(f"{r.comparison.split()[-1]} {p_text(p)}" for r, p in zip(c3.itertuples(), c3_holm))
    return {"C1": "claimed; every median above chance" if (alternatives > CHANCE).all() else
                  "claimed; a median at or below chance",
            "C2": "claimed; its medians show it" if ahead else "claimed; no median shows it",
            "C3": f"{_verdict(np.array(c3_holm), alpha, need_all=True)} by our test on its medians (Holm p: {tests})"}



#: a median's standard error from the quartiles of n seeds: 1.2533 σ/√n (the median of a normal
#: sample), σ = IQR/1.349 — one formula for the paper's seeds (its box plots' quartiles) and ours
MEDIAN_SE_PER_IQR = 1.2533 / 1.349
#: |z| above this: a paper |Δ BN| differs from ours by more than the two sides' seeds explain
SEED_Z = 2.0


def _median_se(q1, q3, n):
    return MEDIAN_SE_PER_IQR * (np.asarray(q3, float) - np.asarray(q1, float)) / np.sqrt(n)


def _cells_with_errors(summary: pd.DataFrame, dataset: str, batch_norm: bool, seeds: int) -> pd.DataFrame:
    """Per paper rule × setting of one dataset and BN setting: our median over the seeds and the
    paper's, each with its standard error from its seeds' quartiles (:data:`MEDIAN_SE_PER_IQR`; the
    paper's quartiles measured from its box plots, their reading uncertainty added). Columns
    setting, algorithm, ours, ours_se, paper, paper_se."""
    frame = with_setting(summary[~summary["diverged"]])
    grouped = frame.groupby(["setting", "algorithm"], observed=True)["best_test_accuracy"]
    ours = pd.DataFrame({"ours": grouped.median(), "ours_se": _median_se(grouped.quantile(0.25),
                                                                         grouped.quantile(0.75), grouped.size())})
    paper = with_setting(paper_final_quartiles(dataset, batch_norm))
    paper = pd.DataFrame({"setting": paper["setting"].astype(str), "algorithm": paper["algorithm"].astype(str),
                          "paper": paper["paper_median"],
                          "paper_se": np.hypot(_median_se(paper["paper_q1"], paper["paper_q3"], seeds),
                                               MEASUREMENT_UNCERTAINTY[dataset])})
    ours = ours.reset_index().astype({"algorithm": str, "setting": str})
    return ours.merge(paper, on=["setting", "algorithm"])


def delta_seed_spread(datasets, summaries: Dict[Tuple[str, bool], pd.DataFrame], seeds: int = 10) -> pd.DataFrame:
    """Could the paper's |Δ BN| and ours differ by the seeds alone? Per dataset × setting × paper
    rule: both |Δ BN| (each a difference of two medians over 10 seeds), the standard error of
    their difference — each of the four medians' from its own quartiles (:func:`_cells_with_errors`)
    — and z = (paper − ours) / that error. Columns dataset, setting, algorithm, paper, ours, se, z."""
    parts = [_cells_with_errors(summary, dataset, batch_norm, seeds).assign(dataset=dataset, batch_norm=batch_norm)
             for (dataset, batch_norm), summary in summaries.items() if dataset in datasets]
    cells = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if cells.empty or not {False, True} <= set(cells["batch_norm"]):
        return pd.DataFrame(columns=["dataset", "setting", "algorithm", "paper", "ours", "se", "z"])
    wide = cells.pivot_table(index=["dataset", "setting", "algorithm"], columns="batch_norm",
                             values=["ours", "ours_se", "paper", "paper_se"])
    out = pd.DataFrame({"paper": (wide["paper"][False] - wide["paper"][True]).abs(),
                        "ours": (wide["ours"][False] - wide["ours"][True]).abs(),
                        "se": np.sqrt((wide["ours_se"] ** 2).sum(axis=1) + (wide["paper_se"] ** 2).sum(axis=1))})
    out = out.dropna().reset_index()
    out["z"] = (out["paper"] - out["ours"]) / out["se"].where(out["se"] > 0)
    return out


def median_gaps(summary: pd.DataFrame, dataset: str, batch_norm: bool, seeds: int = 10) -> pd.DataFrame:
    """Could our median and the paper's differ by the seeds alone? Per paper rule × setting of one
    dataset and BN setting: both medians, their difference (ours − paper), its standard error (both
    medians' from :func:`_cells_with_errors`) and z = difference / error. Columns setting,
    algorithm, ours, paper, se, z."""
    cells = _cells_with_errors(summary, dataset, batch_norm, seeds)
    se = np.hypot(cells["ours_se"], cells["paper_se"])
    return pd.DataFrame({"setting": cells["setting"], "algorithm": cells["algorithm"], "ours": cells["ours"],
                         "paper": cells["paper"], "se": se, "z": (cells["ours"] - cells["paper"]) / se.where(se > 0)})
