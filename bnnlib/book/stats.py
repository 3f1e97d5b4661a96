"""The statistics the pages report: Welch's difference of means, one-way ANOVA, Holm's correction."""

from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

import numpy as np
import pandas as pd

from .labels import with_setting
from .render import percent, prose



def one_way_anova(summary: pd.DataFrame, a: str = "DFA", b: str = "BP", setting: str = "binary sign") -> Dict:
    """One-way ANOVA of best test accuracy, algorithm a versus b, in one setting (diverged excluded)."""
    from scipy import stats
    frame = with_setting(summary)
    frame = frame[(frame["setting"] == setting) & ~frame["diverged"]]
    x = frame[frame["algorithm"] == a]["best_test_accuracy"].to_numpy()
    y = frame[frame["algorithm"] == b]["best_test_accuracy"].to_numpy()
    result = {"a": a, "b": b, "setting": setting, "n_a": len(x), "n_b": len(y),
              "mean_a": float(np.mean(x)) if len(x) else float("nan"),
              "mean_b": float(np.mean(y)) if len(y) else float("nan"), "F": float("nan"), "p": float("nan")}
    if len(x) >= 2 and len(y) >= 2 and (np.ptp(x) > 0 or np.ptp(y) > 0 or x.mean() != y.mean()):
        f, p = stats.f_oneway(x, y)
        result.update(F=float(f), p=float(p))
    return result


def anova_sentence(result: Dict, alpha: float = 0.05) -> str:
    """:func:`one_way_anova`'s result in words: both means, the test with its degrees of
    freedom, and whether the leading rule's advantage is significant at ``alpha``."""
    a, b = result["a"], result["b"]
    means = (f"Mean best test accuracy over the seeds, {result['setting']}: {a} {percent(result['mean_a'])} % "
             f"({result['n_a']} seeds), {b} {percent(result['mean_b'])} % ({result['n_b']} seeds).")
    if result["p"] != result["p"]:
        return prose(means + " Too few seeds, or no variation, for the test.")
    leader = a if result["mean_a"] > result["mean_b"] else b
    verdict = "significant" if result["p"] < alpha else "not significant"
    f = f"{result['F']:,.0f}".replace(",", "\u202f") if result["F"] >= 100 else f"{result['F']:.2f}"
    return prose(f"{means} One-way ANOVA: F(1, {result['n_a'] + result['n_b'] - 2}) = {f}, p = {p_text(result['p'])}: "
                  f"{leader}'s advantage is {verdict} at the {100 * alpha:g} % level.")


def welch_difference(x: Iterable[float], y: Iterable[float], confidence: float = 0.95) -> Dict:
    """mean(x) − mean(y) with a Welch t confidence interval and p-value."""
    from scipy import stats
    x, y = np.asarray(list(x), float), np.asarray(list(y), float)
    out = {"difference": float(x.mean() - y.mean()) if len(x) and len(y) else float("nan"),
           "low": float("nan"), "high": float("nan"), "p": float("nan"), "n_x": len(x), "n_y": len(y)}
    if len(x) < 2 or len(y) < 2:
        return out
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = np.sqrt(vx + vy)
    if se == 0:
        out.update(low=out["difference"], high=out["difference"], p=1.0 if out["difference"] == 0 else 0.0)
        return out
    dof = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    p = 2 * stats.t.sf(abs(out["difference"]) / se, dof)
    out.update(low=out["difference"] - half, high=out["difference"] + half, p=float(p))
    return out


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p_values, float)
    order = [i for i in np.argsort(p) if not np.isnan(p[i])]
    adjusted = np.full(len(p), np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def sign_test(differences: Sequence[float]) -> float:
    """Two-sided sign test: the probability, were a difference equally likely to fall either way,
    of a split of positives and negatives at least as uneven as ``differences``' (zeros dropped)."""
    from scipy import stats
    values = np.asarray(differences, float)
    above, below = int((values > 0).sum()), int((values < 0).sum())
    return float(stats.binomtest(above, above + below, 0.5).pvalue) if above + below else float("nan")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def p_text(p: float) -> str:
    """A p-value for prose: two significant digits, below 0.001 as "2.4 × 10⁻⁷" joined by no-break
    spaces (a line never breaks inside "2e-07", as it does at its hyphen)."""
    if not p == p:
        return "–"
    if p == 0:  # a test of groups without spread whose means differ (welch_difference): below any float
        return "<\u00a010⁻³⁰⁰"
    if p >= 1e-3:
        return f"{p:.2g}"
    mantissa, exponent = f"{p:.1e}".split("e")
    return f"{mantissa}\u00a0×\u00a010{str(int(exponent)).translate(_SUPERSCRIPT)}"
