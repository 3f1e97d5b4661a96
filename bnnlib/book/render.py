"""How a page shows things: the figure style, where figures are saved, HTML tables whose numbers
keep together, and the formatting of numbers in tables and sentences."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import re
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from ..paths import FIGURES_DIR
from .labels import COLLAPSED_COLOUR, SETTINGS

FIGURES_VARIABLE = "BNNLIB_FIGURES_DIR"


def figures_dir() -> Path:
    folder = Path(os.environ.get(FIGURES_VARIABLE) or FIGURES_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_figure(fig, name: str) -> None:
    """Write ``figures/<name>.png`` (200 dpi) and ``.svg``. Returns nothing, so that a page whose
    last line saves a figure shows the figure, not the build machine's path to it."""
    folder = figures_dir()
    fig.savefig(folder / f"{name}.png", dpi=200, bbox_inches="tight")
    fig.savefig(folder / f"{name}.svg", bbox_inches="tight", metadata={"Date": None})


#: font sizes (pt) for a figure the book shows 6.4 in wide: at a phone's 390 px it is scaled to about
#: half, and its smallest text still reads at ~8 px (matplotlib's defaults gave 4-6 px there)
READABLE = {"font.size": 13, "axes.titlesize": 13, "axes.labelsize": 13, "xtick.labelsize": 13,
            "ytick.labelsize": 12, "legend.fontsize": 12, "legend.title_fontsize": 12}
#: the width of such a figure (in)
READABLE_WIDTH = 6.4


@contextlib.contextmanager
def readable(overrides: Optional[dict] = None):
    """matplotlib's rc_context at the READABLE font sizes (``overrides`` on top), keeping what the
    body changed of ``interactive``: a page's first figure activates the notebook's inline backend,
    which turns interactive mode on — reverted with the sizes, every later cell's figure was drawn
    but never shown (the mechanism chapter lost 10 of its 11 figures)."""
    import matplotlib
    with matplotlib.rc_context({**READABLE, **(overrides or {})}):
        yield
        interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def style():
    """Publication style: seaborn, readable fonts, colour-blind palette."""
    import matplotlib
    import seaborn as sns
    matplotlib.rcParams["svg.hashsalt"] = "bnnlib"  # stable SVG ids, so re-runs diff cleanly
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=1.1)


#: a cell that is a number or a group of numbers ("96.09 ± 0.15", "[+0.12, +3.40]", "0.1, 1e-4",
#: "2.4 × 10⁻⁷")
NUMERIC_CELL = re.compile(r"[\d\s.,:;+\-−–±%×()\[\]e*⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+")  # "*": a significance star
UNIT_AFTER_NUMBER = re.compile(r"(\d) (%|epochs?\b)")
EXPONENT_MINUS = re.compile(r"(?<=\de)-(?=\d)")
RANGE_DASH = re.compile(r"(?<=\d)–(?=[\d+\-−])")


def _unbreakable(value):
    """Numbers keep together: in a numeric cell "a ± b", "m × n", "lo–hi" and "[lo, hi]" do not
    break, so a narrow column wraps labels, or an estimate before its interval, but never splits a
    number from its spread or an interval in two. In a cell of words, a number keeps its unit
    ("5 %", "100 epochs") and a dataset's name keeps together (browsers break "Fashion-MNIST"
    after its hyphen)."""
    if not isinstance(value, str):
        return value
    if not NUMERIC_CELL.fullmatch(value):  # in words, a number keeps its unit: "5 %", "100 epochs"
        # ... and an exponent its minus: "1e-4 / 1e-5" in a cell of words broke after "1e-" at 390 px
        return EXPONENT_MINUS.sub("-\u2060", UNIT_AFTER_NUMBER.sub(
            "\\1\u00a0\\2", value.replace("Fashion-MNIST", "Fashion-\u2060MNIST")))
    value = value.replace(" ± ", "\u00a0±\u00a0").replace(" × ", "\u00a0×\u00a0").replace(", ", ",\u00a0") \
        .replace(" *", "\u00a0*")
    # a word joiner after a range's dash and after an exponent's minus: browsers may otherwise
    # break "95.85–96.36" or "1e-4" after it
    return EXPONENT_MINUS.sub("-\u2060", RANGE_DASH.sub("–\u2060", value))


def prose(text: str) -> str:
    """A sentence for a page: numbers keep their units, names and exponents ("7.4e-28") together."""
    return EXPONENT_MINUS.sub("-\u2060", _unbreakable(text))


def _is_numeric_column(column: pd.Series) -> bool:
    values = column.dropna()
    return not values.empty and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    or isinstance(v, str) and NUMERIC_CELL.fullmatch(v) for v in values)


def _mark_columns(html: str, numeric: set, keep: set = frozenset(), settings: set = frozenset()) -> str:
    """Give the header and cells of numeric columns the class ``num`` (right-aligned by the
    book's CSS, like a paper's tables) and the others ``text``: pandas aligns every header right
    and every cell left. Cells of the columns in ``keep`` also get ``keep`` (never wrapped), those
    of ``settings`` (a setting's name in each cell) ``setting``: on one line where the screen is
    wider than a phone's ("continuous tanh" broke in some rows of a table and not in others)."""
    def kind(position: int, tag: str) -> str:
        return ("num" if position in numeric else "text") + (" keep" if tag == "td" and position in keep else "") \
            + (" setting" if tag == "td" and position in settings else "")

    def mark(row):
        position = itertools.count()
        return re.sub(r"<(t[dh])>", lambda tag: f'<{tag.group(1)} class="{kind(next(position), tag.group(1))}">',
                      row.group(0))
    return re.sub(r"<tr[^>]*>.*?</tr>", mark, html, flags=re.S)


def _is_setting_column(column: pd.Series) -> bool:
    values = column.dropna().astype(str)
    return not values.empty and values.isin(SETTINGS).all()


def html_table(frame: pd.DataFrame, keep_together: Sequence[str] = ()):
    """A table for a page: HTML without pandas' index column, numbers right-aligned (its
    plain-text face is stable, so nbval compares the same output on every execution).
    ``keep_together``: columns of short labels whose cells must not wrap ("grid search" over two
    lines reads as two entries) — only where the table still fits the page, so opted into per table."""
    from IPython.display import HTML
    unknown = [name for name in keep_together if name not in frame.columns]
    if unknown:
        raise ValueError(f"keep_together names no column: {', '.join(unknown)}; columns: {', '.join(frame.columns)}")
    numeric = {i for i, name in enumerate(frame.columns) if _is_numeric_column(frame[name])}
    keep = {i for i, name in enumerate(frame.columns) if name in keep_together}
    settings = {i for i, name in enumerate(frame.columns) if _is_setting_column(frame[name])}
    html = frame.map(_unbreakable).to_html(index=False, border=0, na_rep="–")
    return HTML(_mark_columns(html, numeric, keep, settings))


def tables_by(frame: pd.DataFrame, column: str, page_of: Optional[Callable[[str], Optional[str]]] = None) -> list:
    """``frame`` as one :func:`html_table` per value of ``column`` (in the frame's order), each under
    that value in bold — a link to the page ``page_of(value)`` names, where it names one — to
    ``display(*...)``: a label a long table repeats on every row becomes its part's heading, and
    each part keeps the columns a phone's screen has room for. The links resolve where the cell's
    Markdown is rendered as MyST (its metadata ``mystnb.markdown_format``)."""
    from IPython.display import Markdown
    parts = []
    for value, rows in frame.groupby(column, sort=False):
        page = page_of(value) if page_of else None
        parts += [Markdown(f"**[{value}]({page}.ipynb)**" if page else f"**{value}**"),
                  html_table(rows.drop(columns=column))]
    return parts


def epoch_axis(ax, last: int) -> None:
    """An x axis of epochs: integers up to 20 epochs; beyond, logarithmic with round ticks, so the
    first epochs (where a short budget stops, where most weights flip) stay visible beside the
    hundredth."""
    if last > 20:
        ax.set_xscale("log")
        # half decades: at 1-2-5, "50" and "100" touched in a half-width panel
        ticks = [t for t in (1, 3, 10, 30, 100, 300, 1000) if t <= last]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    elif last <= 10:  # every epoch: the locator left 1, 3 and 5 of five epochs unlabelled
        ax.set_xticks(range(1, last + 1))
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)


@functools.lru_cache(maxsize=None)
def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """The indices of seaborn's bootstrap of ``n`` values, one row per resample, drawn in the
    order ``seaborn.algorithms.bootstrap`` draws them from ``numpy.random.default_rng(seed)``."""
    integers = np.random.default_rng(seed).integers
    return np.stack([integers(0, n, n, dtype=np.intp) for _ in range(n_boot)])


def mean_ci95(values) -> tuple:
    """The 95 % bootstrap interval of the mean that ``sns.lineplot(errorbar=("ci", 95), n_boot=1000,
    seed=0)`` draws, to the last bit, with the 1000 resamples of every point taken at once: seaborn
    takes them one Python call at a time (~10 ms a point), which was most of the 100-epoch mechanism
    chapter's build time (2,400 points per per-layer epoch figure). Pass as ``errorbar=mean_ci95``."""
    values = np.asarray(values, dtype=float)
    mean = np.nanmean if np.isnan(values.sum()) else np.mean  # seaborn's nan-aware switch
    means = mean(values[_resamples(len(values), 1000, 0)], axis=1)
    return tuple(np.nanpercentile(means, [2.5, 97.5]))


def percent(value: float) -> str:
    return "–" if value != value else f"{100 * value:.2f}"


def points_apart(a: float, b: float) -> float:
    """a − b in points as a page shows them: the difference of the two accuracies as
    :func:`percent` prints them, so that a gap stated beside them is their difference
    (92.58 − 92.46 = 0.12, where the unrounded fractions' 0.1150 points would print 0.11). NaN
    where either is."""
    if a != a or b != b:
        return float("nan")
    return float(percent(a)) - float(percent(b))


def signed_points(value: float) -> str:
    """A fraction as signed points, two decimals ("+1.27"; "–" for NaN; + 0.0: never "-0.00")."""
    return "–" if value != value else f"{round(100 * value, 2) + 0.0:+.2f}"


def _seeded_stripplot(**options) -> None:
    """seaborn's stripplot, its jitter drawn from numpy's global RNG seeded here (and restored), so
    that a figure is the same each time its page is executed."""
    import seaborn as sns
    rng_state = np.random.get_state()
    np.random.seed(0)
    try:
        sns.stripplot(**options)
    finally:
        np.random.set_state(rng_state)


def _collapsed_mask(frame: pd.DataFrame) -> pd.Series:
    """True for runs recorded as collapsed; unknown (no class counts recorded) counts as not collapsed here:
    a figure marks only what is known."""
    if "collapsed" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["collapsed"].astype("boolean").fillna(False).astype(bool)


def _dots_with_collapsed_apart(ax, frame: pd.DataFrame, hue: str, hue_order: list, palette: dict, legend_title: str,
                               **dots) -> None:
    """One dot per run over the boxes already drawn on ``ax``, dodged like them. A collapsed run (one class
    for every test image at its last epoch) is a red cross, not a dot: its accuracy is a class's frequency,
    not the rule's result; the legend counts them. The legend is placed right of the axes."""
    from matplotlib.lines import Line2D
    collapsed = _collapsed_mask(frame)
    placement = dict(x="algorithm", hue=hue, hue_order=hue_order, dodge=True, ax=ax)
    _seeded_stripplot(data=frame[~collapsed], palette=palette, **placement, **dots)
    handles, labels = ax.get_legend_handles_labels()
    if collapsed.any():
        _seeded_stripplot(data=frame[collapsed], palette={h: COLLAPSED_COLOUR for h in hue_order}, marker="X",
                          size=6, alpha=0.8, legend=False, **placement, y=dots["y"], jitter=dots.get("jitter", True))
        handles.append(Line2D([], [], marker="X", color=COLLAPSED_COLOUR, linestyle="", markersize=7))
        labels.append(f"collapsed ({int(collapsed.sum())})")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), title=legend_title, frameon=False)
