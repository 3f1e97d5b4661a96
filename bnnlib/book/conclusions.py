"""The conclusions chapter (``07_conclusions``): each claim's verdict at the page's budget, beside
what the paper's own medians show and what our runs at every budget decide, and where they part."""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import pandas as pd

from ..protocol import BUDGETS, get_budget
from .claims import (CLAIM_DETAIL, CLAIMS, SEED_Z, VERDICT_KEYS, _where, central_values, decide,
                     delta_seed_spread, deltas_of, evidence, paper_values, paper_verdicts)
from .evaluation_check import evaluation_pass_z
from .labels import ALGORITHMS, ALTERNATIVES, bn_short, dataset_name
from .paper import MEASUREMENT_UNCERTAINTY, paper_selection
from .records import budget_statement, epochs_beside_paper, epochs_label, first_recorded, open_store, recorded_so_far
from .shallow import bp_against_shallow, shallow_bar_phrase, shallow_beside
from .stats import p_text



def claims_table(verdicts: Dict, budget) -> pd.DataFrame:
    """Claims × evidence × verdict × budget, one row per claim of the paper."""
    table, glue = verdicts["table"], verdicts["glue"]
    rows = []
    for claim, text in CLAIMS.items():
        tests = table[table["claim"] == claim]
        significant = int(tests["significant"].sum())
        rows.append({"claim": f"{claim}: {text}",
                     "evidence": f"{len(tests)} one-sided test{'s' if len(tests) != 1 else ''}, Holm-corrected; "
                                 f"{significant} significant at 5 %; {CLAIM_DETAIL[claim](glue)}",
                     "verdict": glue[VERDICT_KEYS[claim]],
                     "our runs": epochs_beside_paper(budget)})
    return pd.DataFrame(rows)


def tests_table(verdicts: Dict, claim: str) -> pd.DataFrame:
    """Every test of one claim, for reading: names in words, percent, Holm-adjusted p-values in
    scientific notation (the column that decides), no more columns than fit the page."""
    table = verdicts["table"]
    tests = table[table["claim"] == claim]
    data = ["all" if d == "all" else f"{dataset_name(d)}, {bn_short(b)}"
            for d, b in zip(tests["dataset"], tests["batch_norm"])]
    # C3's rows hold medians over the dataset × setting pairs (c3_tests), C1's and C2's means over seeds
    value, difference = (("median |Δ| over pairs (points)", "median BP − alternative (points)") if claim == "C3"
                         else ("mean (%)", "difference (points)"))
    out = pd.DataFrame({
        "data": data, "setting": tests["setting"], "test": tests["comparison"],
        value: (100 * tests["mean"]).map(lambda v: f"{v:.2f}"),
        difference: (100 * tests["difference"]).map(lambda v: f"{v:+.2f}"),
        "seeds" if claim != "C3" else "pairs": tests["n"].astype(int),
        "p (Holm)": tests["p_holm"].map(p_text),  # the adjusted p decides; the raw one stays in decide()'s table
        "significant": tests["significant"].map({True: "yes", False: "no"}),
    })
    if claim == "C3":
        out = out.drop(columns=["data", "setting"])
    return out.reset_index(drop=True)


def decided_at(budget_name: str, datasets, results_base: Optional[str] = None,
               alpha: float = 0.05) -> Optional[Tuple[Dict, Dict]]:
    """(verdicts, summaries) from a budget's records — nothing is computed — or None while any
    of its final runs for these datasets is not recorded."""
    datasets = list(datasets)
    summaries = recorded_so_far(budget_name, datasets, results_base)
    if len(summaries) < 2 * len(datasets):
        return None
    verdicts = decide(summaries, alpha)
    cells, _, _ = shallow_beside(summaries, get_budget(budget_name), results_base)
    verdicts["glue"]["c1_shallow"] = shallow_bar_phrase(cells)
    return verdicts, summaries


def _settings_named(keys) -> str:
    """The dataset × BN settings in words, in the order given, a dataset once: "MNIST with and
    without BN, Fashion-MNIST without BN"."""
    switches = {}
    for dataset, batch_norm in keys:
        switches.setdefault(dataset, []).append(batch_norm)
    words = {(False,): "without BN", (True,): "with BN", (False, True): "with and without BN"}
    return ", ".join(f"{dataset_name(d)} {words[tuple(b)]}" for d, b in switches.items())


def _so_far(datasets, summaries: Dict[Tuple[str, bool], pd.DataFrame]) -> Dict[str, str]:
    """Each claim's evidence from the settings recorded so far, beside the paper's medians on the
    same settings: medians only, no verdict (the tests wait for every setting)."""
    total = 2 * len(list(datasets))
    if not summaries:
        return {claim: f"its runs are not all recorded yet (0 of {total} settings)" for claim in CLAIMS}
    ours = evidence(central_values(summaries))
    paper = paper_values(datasets)
    keys = set(summaries)
    paper = evidence(paper[[(d, b) in keys for d, b in zip(paper["dataset"], paper["batch_norm"])]])
    in_order = [(d, b) for d in datasets for b in (False, True) if (d, b) in keys]
    head = f"so far only {_settings_named(in_order)} ({len(keys)} of {total} settings): "
    out = {}
    for claim in CLAIMS:
        if ours[claim] == "–":
            out[claim] = head + "needs both BN settings of a dataset"
        else:
            out[claim] = f"{head}{ours[claim]}. The paper's medians on the same settings: {paper[claim]}"
    return out


def beside_paper(datasets, by_budget: Dict[str, Optional[Tuple[Dict, Dict]]], alpha: float = 0.05,
                 so_far: Optional[Dict[str, Dict[Tuple[str, bool], pd.DataFrame]]] = None) -> pd.DataFrame:
    """Each claim as the paper's medians show it and as our runs decide it at each budget:
    ``by_budget`` maps a budget's name to (verdicts, summaries), or None while its runs are not
    all recorded; for such a budget, ``so_far`` may give the summaries of the settings already
    recorded (:func:`recorded_so_far`), whose medians are then shown beside the paper's on the
    same settings, without a verdict. One row per claim × source."""
    paper = paper_verdicts(datasets, alpha)
    paper_evidence = evidence(paper_values(datasets))
    partial = {name: _so_far(datasets, (so_far or {}).get(name, {}))
               for name, decided in by_budget.items() if decided is None}
    rows = []
    for claim, text in CLAIMS.items():
        rows.append({"claim": claim, "source": "the paper's medians (100 epochs)",
                     "evidence": paper_evidence[claim], "verdict": paper[claim]})
        for name, decided in by_budget.items():
            source = f"ours ({epochs_label(BUDGETS[name])})"
            if decided is None:
                rows.append({"claim": claim, "source": source, "evidence": partial[name][claim],
                             "verdict": "– (decided once every setting is recorded)"})
                continue
            verdicts, summaries = decided
            rows.append({"claim": claim, "source": source, "evidence": evidence(central_values(summaries))[claim],
                         "verdict": verdicts["glue"][VERDICT_KEYS[claim]]})
    return pd.DataFrame(rows)


#: the mark of an |Δ BN| of ours that the seeds do not take to the paper's (:func:`seeds_apart`)
APART = "†"


def deltas_beside_paper(datasets, summaries: Dict[Tuple[str, bool], pd.DataFrame]) -> pd.DataFrame:
    """C3's pairs: |Δ BN| (points) per dataset × setting, the paper's medians beside ours; ours
    marked :data:`APART` where it is further from the paper's than the seeds explain."""
    ours, paper = deltas_of(central_values(summaries)), deltas_of(paper_values(datasets))
    table = paper.merge(ours, on=["dataset", "setting"], suffixes=(" paper", " ours"))
    spread = delta_seed_spread(datasets, summaries).set_index(["dataset", "setting", "algorithm"])["z"]
    out = pd.DataFrame({"data": table["dataset"].map(dataset_name), "setting": table["setting"]})
    for algorithm in ALGORITHMS:
        for side in ("paper", "ours"):
            out[f"{algorithm} {side}"] = (100 * table[f"{algorithm} {side}"]).map(lambda v: f"{v:.2f}")
        apart = [abs(spread.get((d, s, algorithm), 0.0)) > SEED_Z for d, s in zip(table["dataset"], table["setting"])]
        out[f"{algorithm} ours"] = [v + (APART if a else "") for v, a in zip(out[f"{algorithm} ours"], apart)]
    return out


def seeds_apart(datasets, summaries: Dict[Tuple[str, bool], pd.DataFrame], budget,
                results_base: Optional[str] = None) -> str:
    """Whether the seeds alone explain where our |Δ BN| part from the paper's
    (:func:`~bnnlib.book.claims.delta_seed_spread`): how many cells lie within :data:`SEED_Z`
    standard errors, which do not, and whether the pairs whose order differs from the paper's do."""
    spread = delta_seed_spread(datasets, summaries)
    if spread.empty:
        return ""
    apart = spread[spread["z"].abs() > SEED_Z].sort_values("z", key=abs, ascending=False)
    text = (f"Could the paper's |Δ BN| and ours after {epochs_label(budget)} differ by the seeds alone? Each is a "
            f"difference of two medians over 10 seeds; each median's standard error follows from its seeds' "
            f"quartiles (the paper's measured from its box plots), and in **{len(spread) - len(apart)} of "
            f"{len(spread)}** cells the two |Δ BN| lie within {SEED_Z:g} standard errors of their difference.")
    if len(apart):
        other = [other_choice(summaries, r.dataset, r.algorithm, r.setting) for r in apart.itertuples()]
        choice = "; another (init, lr) than the paper's"
        text += (f" Further apart, marked {APART} in the table: " + "; ".join(
            f"{r.algorithm}, {r.setting} on {dataset_name(r.dataset)} (paper {100 * r.paper:.2f}, ours "
            f"{100 * r.ours:.2f} points, z = {r.z:+.1f}{choice if o else ''})"
            for r, o in zip(apart.itertuples(), other))
            + f". The seeds do not explain these. In {sum(other)} of them our grid search chose another (init, lr) "
              f"than the paper's with or without BN, so the two |Δ BN| compare other configurations")
        rest = apart[[not o for o in other]]
        checked = evaluation_pass_z(rest, summaries, budget, results_base)
        if checked:
            closer = sum(abs(moved) <= SEED_Z for _, moved, _ in checked)
            which = f"all {len(rest)}" if len(checked) == len(rest) else f"{len(checked)} of the {len(rest)}"
            text += (f". The evaluation check measured the original code's pass on the BN runs of {which} others; "
                     f"with our BN medians moved by its effect, z per cell: "
                     + "; ".join(f"{name}: {z:+.1f} → {moved:+.1f}" if f"{z:+.1f}" != f"{moved:+.1f}" else
                                 f"{name}: {z:+.1f}, unchanged" for name, moved, z in checked)
                     + f", so the pass explains {closer} of them and {len(rest) - closer} are not explained by "
                       f"anything we have measured.")
        else:
            text += f"; the other {len(rest)} are not explained by anything we have measured."
    z = spread.set_index(["dataset", "setting", "algorithm"])["z"]
    flips = []
    for r in deltas_of(paper_values(datasets)).merge(deltas_of(central_values(summaries)), on=["dataset", "setting"],
                                                     suffixes=("_paper", "_ours")).itertuples():
        for algorithm in ALTERNATIVES:
            if getattr(r, "BP_paper") > getattr(r, f"{algorithm}_paper") and \
                    getattr(r, "BP_ours") <= getattr(r, f"{algorithm}_ours"):
                apart = [a for a in ("BP", algorithm) if abs(z.get((r.dataset, r.setting, a), 0.0)) > SEED_Z]
                flips.append(order_flip(algorithm, r.setting, r.dataset, apart))
    if flips:
        text += (f" BP's |Δ BN| is above the alternative's in the paper but not in ours in {len(flips)} "
                 f"comparison{'s' if len(flips) > 1 else ''}: " + "; ".join(flips) + ".")
    return text


def order_flip(algorithm: str, setting: str, dataset: str, apart: Sequence[str]) -> str:
    """One pair whose order of |Δ BN| is the paper's reversed in ours, and whether the seeds could
    explain it: ``apart``, the rules whose |Δ BN| lies further than :data:`SEED_Z` standard errors
    from the paper's."""
    rules = " and ".join(f"{a}'s" for a in apart)
    seeds = (f"both rules' |Δ BN| within {SEED_Z:g} standard errors of the paper's: the seeds could explain it"
             if not apart else f"{rules} |Δ BN| further than {SEED_Z:g} standard errors from the paper's")
    return f"BP against {algorithm}, {setting} on {dataset_name(dataset)} ({seeds})"


def what_differs(datasets, summaries: Dict[Tuple[str, bool], pd.DataFrame], verdicts: Dict, budget) -> str:
    """For every claim our runs at ``budget`` do not support, where they part from the paper's
    medians — computed, one sentence per claim; empty when every claim is supported."""
    sentences = []
    table = verdicts["table"]
    for claim in CLAIMS:
        if verdicts["glue"][VERDICT_KEYS[claim]] == "supported":
            continue
        if claim == "C3":
            ours, paper = deltas_of(central_values(summaries)), deltas_of(paper_values(datasets))
            joined = paper.merge(ours, on=["dataset", "setting"], suffixes=("_paper", "_ours"))
            parts, largest, within = [], 0.0, 0
            for algorithm in ALTERNATIVES:
                flipped = joined[(joined["BP_paper"] > joined[f"{algorithm}_paper"]) &
                                 (joined["BP_ours"] <= joined[f"{algorithm}_ours"])]
                for r in flipped.itertuples():
                    other_paper, other_ours = getattr(r, f"{algorithm}_paper"), getattr(r, f"{algorithm}_ours")
                    parts.append(f"{r.setting} on {dataset_name(r.dataset)} (BP "
                                 f"{100 * r.BP_paper:.2f} vs {algorithm} {100 * other_paper:.2f} points in the paper; "
                                 f"{100 * r.BP_ours:.2f} vs {100 * other_ours:.2f} in ours)")
                    largest = max(largest, r.BP_paper, other_paper, r.BP_ours, other_ours)
                    # each |Δ| is a difference of two medians measured to ±u: the order is unsure below 4u
                    within += int(abs(r.BP_paper - other_paper) < 4 * MEASUREMENT_UNCERTAINTY.get(r.dataset, 0.0))
            binary_weights = joined[joined["setting"].str.startswith("binary")]
            both = {side: int(((binary_weights[f"BP_{side}"] > binary_weights[f"DFA_{side}"]) &
                               (binary_weights[f"BP_{side}"] > binary_weights[f"DRTP_{side}"])).sum())
                    for side in ("paper", "ours")}
            with_binary = (f" With binary weights, BP's |Δ BN| is above both alternatives' in {both['paper']} of "
                           f"{len(binary_weights)} pairs in the paper and in {both['ours']} of {len(binary_weights)} "
                           f"in ours.")
            if parts:
                sentences.append(f"C3 after {epochs_label(budget)}: BP's |Δ BN| is above "
                                 f"the alternative's in the paper but not in our runs for {'; '.join(parts)}. Every "
                                 f"|Δ BN| in these pairs is at most {100 * largest:.1f} points, and in {within} of "
                                 f"{len(parts)} the paper's own order is within the uncertainty of reading its "
                                 f"figures." + with_binary)
            else:
                sentences.append(f"C3 after {epochs_label(budget)}: BP's |Δ BN| is above the "
                                 f"alternatives' in the same pairs as in the paper; the test's margin differs, not "
                                 f"the order." + with_binary)
        else:
            failing = table[(table["claim"] == claim) & ~table["significant"]]
            sentences.append(f"{claim} after {epochs_label(budget)}: not significant — "
                             + "; ".join(f"{r.comparison} in {_where(r.dataset, r.batch_norm, r.setting)}"
                                         for r in failing.itertuples()) + ".")
    return " ".join(sentences)


def at_every_budget(datasets, page_budget: str, results_base: Optional[str] = None, alpha: float = 0.05) -> Dict:
    """Each claim as the paper's medians show it and as our runs decide it at the page's budget —
    while that is not decided, at cpu and paper too (:func:`beside_paper`; a budget still running
    shows the settings it has recorded, without a verdict) — with the texts the page glues:
    ``what_differs`` (where our runs part from the paper, at each budget the table shows that is
    decided) and ``pairs_budget`` (the budget C3's pairs are
    shown at: :func:`~bnnlib.book.records.first_recorded`). Returns {"decided": {budget:
    (verdicts, summaries) or None}, "shown": the budgets the table shows, "table", "pairs_budget": a
    budget's name or None, "glue", "note": how to read a budget still running, where the table shows one}."""
    decided = {name: decided_at(name, datasets, results_base, alpha)
               for name in dict.fromkeys([page_budget, "paper", "cpu"])}
    # the table shows the page's budget once it is decided; until then every budget, as far as recorded
    shown = {page_budget: decided[page_budget]} if decided[page_budget] is not None else decided
    so_far = {name: recorded_so_far(name, datasets, results_base) for name, d in shown.items() if d is None}
    table = beside_paper(datasets, shown, alpha, so_far)
    differences = []  # of the budgets the table shows: once the page's is decided, no aside on shorter runs
    for name, (verdicts_, summaries_) in ((n, d) for n, d in shown.items() if d is not None):
        sentence = what_differs(datasets, summaries_, verdicts_, get_budget(name))
        if sentence and name != page_budget:
            sentence = f"An aside on our shorter runs, which this page does not show otherwise: {sentence}"
        if not sentence and name == page_budget:
            sentence = (f"After {epochs_label(get_budget(name))} our runs support every claim the paper makes. Their "
                        f"numbers part from the paper's cell by cell on the Results pages, and in "
                        f"C3's evidence pair by pair, below.")
        differences.append(sentence)
    differences = " ".join(differences)
    pairs_budget = first_recorded(decided, page_budget)  # C3's pairs: the best budget decided
    glue = {"what_differs": differences.strip() or "At every budget recorded, our runs support each claim the paper "
                                                   "makes.",
            "pairs_budget": epochs_label(get_budget(pairs_budget)) if pairs_budget
            else "no runs recorded yet"}
    # a reading note only where the table holds a budget still running
    note = ("A budget whose runs are still being recorded shows the settings it has completed, beside the paper's "
            "medians on the same settings, and gives no verdict until every setting is in." if so_far else "")
    return {"decided": decided, "shown": list(shown), "table": table, "pairs_budget": pairs_budget, "glue": glue,
            "note": note}


def pairs_table(datasets, every_budget: Dict) -> Optional[pd.DataFrame]:
    """:func:`deltas_beside_paper` at the budget C3's pairs are shown at (None where none is decided)."""
    name = every_budget["pairs_budget"]
    return deltas_beside_paper(datasets, every_budget["decided"][name][1]) if name else None


def pairs_apart(datasets, every_budget: Dict, results_base: Optional[str] = None) -> str:
    """:func:`seeds_apart` at the budget C3's pairs are shown at ("" where none is decided)."""
    name = every_budget["pairs_budget"]
    return seeds_apart(datasets, every_budget["decided"][name][1], get_budget(name), results_base) if name else ""


def shallow_bar(summaries: Dict[Tuple[str, bool], pd.DataFrame], budget, results_base: Optional[str] = None) -> str:
    """A harder bar for C1 than chance: what random binary features reach with only the output layer
    trained (the SHALLOW control) in the binary settings, beside DFA's and DRTP's lowest mean there —
    from SHALLOW's final runs where recorded at ``budget``, else from its grid search's selected runs
    (one seed, on the grid's dataset) — and, fully binary, BP's mean beside it: whether BP's training
    of the hidden layers ends above its untrained ones (#44's question for C2). "" where neither is
    recorded."""
    parts, baseline, source = shallow_beside(summaries, budget, results_base)
    if not parts:
        return ""
    highest = max(parts)
    margin = min(cell.lowest - cell.shallow for cell in parts)
    head = (f"Chance is a low bar. Random binary features with only the output layer trained (our SHALLOW control: "
            f"the hidden layers keep their initial weights) reach up to {100 * highest.shallow:.1f} % after "
            f"{epochs_label(budget)} in a binary setting ({highest.where}). Measured in {len(parts)} binary cells, "
            f"from SHALLOW's {source}, ")
    if margin > 0:
        text = head + (f"DFA's and DRTP's mean best test accuracies lie above SHALLOW's in every one, by at least "
                       f"{100 * margin:.1f} points: the alternatives train the hidden layers of binary networks, not "
                       f"only their output layer.")
    else:
        text = head + (f"DFA's or DRTP's mean lies at or below SHALLOW's in "
                       f"{sum(cell.lowest <= cell.shallow for cell in parts)} of them.")
    if baseline:  # the question C2's baseline raises: does BP's training of the hidden layers help at all?
        text += (" And BP, the baseline C2 compares with? Fully binary (binary sign), its mean best test accuracy is "
                 + bp_against_shallow(baseline) + ".")
    return text


def runs_behind(every_budget: Dict, results_base: Optional[str] = None) -> list:
    """One :func:`~bnnlib.book.records.budget_statement` per budget whose records this page read
    (:func:`at_every_budget`'s decided budgets among those it shows, and the one C3's pairs are shown at)."""
    statements = []
    quoted = set(every_budget["shown"]) | {every_budget["pairs_budget"]}
    for name, decided in every_budget["decided"].items():
        if decided is not None and name in quoted:
            budget, store = open_store(name, results_base)
            ids = [run_id for summary in decided[1].values() for run_id in summary["run_id"]]
            statements.append(budget_statement(budget, store, ids))
    return statements


def other_choice(summaries: Dict[Tuple[str, bool], pd.DataFrame], dataset: str, algorithm: str, setting: str) -> bool:
    """Whether our final runs of a rule and setting use another (init, lr) than the paper's
    selection, with or without BN (Fashion-MNIST's come from MNIST's grid, as the paper's do)."""
    weights, activation = setting.split()
    for batch_norm in (False, True):
        ours = summaries.get((dataset, batch_norm))
        if ours is None:
            continue
        ours = ours[(ours["algorithm"] == algorithm) & (ours["weights"] == weights) & (ours["activation"] == activation)]
        paper = paper_selection(batch_norm)
        paper = paper[(paper["algorithm"] == algorithm) & (paper["weights"] == weights) &
                      (paper["activation"] == activation)]
        if len(ours) and len(paper) and (float(ours["init"].iloc[0]), float(ours["lr"].iloc[0])) != \
                (float(paper["init"].iloc[0]), float(paper["lr"].iloc[0])):
            return True
    return False
