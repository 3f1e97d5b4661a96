"""A number that two pages quote is the same number on both, in the committed executed pages (the
outputs nbval checks): the results index against each results page, the Conclusions' tests against
the results pages' tables, the Introduction against the Conclusions and the results index, Methods' opening against the
results pages, the
Deployment chapter's headline against its own table's source. A page re-executed on other records
while another was not fails here."""

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from conftest import glued_value

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
RESULT_PAGES = {("MNIST", False): "04_results_mnist_nobn", ("MNIST", True): "04_results_mnist_bn",
                ("Fashion-MNIST", False): "04_results_fashion_mnist_nobn",
                ("Fashion-MNIST", True): "04_results_fashion_mnist_bn"}


def clean(text: str) -> str:
    """Rendering aside: no-break spaces and word joiners (render._unbreakable) read as plain text."""
    return " ".join(text.replace("\u2060", "").replace("\xa0", " ").split())


def parse_table(html: str) -> list:
    """An HTML table's rows as dicts keyed by its header."""
    rows = [[clean(td.get_text()) for td in tr.find_all(["td", "th"])]
            for tr in BeautifulSoup(html, "html.parser").find_all("tr")]
    return [dict(zip(rows[0], row)) for row in rows[1:]]


@lru_cache(maxsize=None)
def outputs(page: str) -> tuple:
    """(Markdown and plain-text outputs, tables as lists of row dicts, glued values) of a page."""
    texts, tables, glued = [], [], {}
    for cell in json.loads((CHAPTERS / f"{page}.ipynb").read_text())["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                glued[name] = clean(glued_value(data["application/papermill.record/text/plain"]))
            if "text/html" in data and "<table" in "".join(data["text/html"]):
                tables.append(parse_table("".join(data["text/html"])))
            elif "text/markdown" in data:
                texts.append(clean("".join(data["text/markdown"])))
    return texts, tables, glued


def table_with(page: str, *columns: str) -> list:
    found = [t for t in outputs(page)[1] if t and all(c in t[0] for c in columns)]
    assert found, f"{page}: no table with columns {columns}"
    return found[0]


def index_rows() -> list:
    """The results index's rows, each with the data label and linked page of the table it stands
    under (one table per dataset × BN setting, under a bold link to its page)."""
    rows, heading = [], None
    for cell in json.loads((CHAPTERS / "04_results.ipynb").read_text())["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data and "<table" in "".join(data["text/html"]) and heading:
                rows += [{**row, "data": heading.group(1), "page": heading.group(2)}
                         for row in parse_table("".join(data["text/html"]))]
            elif "text/markdown" in data:
                heading = re.fullmatch(r"\*\*\[(.+)\]\((04_results_\w+)\.ipynb\)\*\*", clean("".join(data["text/markdown"])))
    return rows


def test_the_results_index_quotes_each_results_page_row_for_row():
    index = index_rows()
    assert len(index) == 48
    for row in index:
        data = re.match(r"(.+), (no BN|BN) \(", row["data"])
        page = RESULT_PAGES[data.group(1), data.group(2) == "BN"]
        assert row["page"] == page, (row["data"], "links to", row["page"])
        [mine] = [r for r in table_with(page, "our median (%)", "paper IQR (%)")
                  if (r["setting"], r["algorithm"]) == (row["setting"], row["algorithm"])]
        for column in ("IQRs overlap", "Δ (points)", "our median (%)", "paper median (%)"):
            assert row[column] == mine[column], (page, row["setting"], row["algorithm"], column)


def test_the_conclusions_tests_use_the_results_pages_means():
    tests = [row for row in table_with("07_conclusions", "test", "mean (%)") if row["test"].endswith("> chance")]
    assert len(tests) == 24
    for row in tests:
        dataset, bn = row["data"].split(", ")
        page = RESULT_PAGES[dataset, bn == "BN"]
        algorithm = row["test"].split()[0]
        [mine] = [r for r in table_with(page, "mean ± std (%)") if (r["setting"], r["algorithm"]) ==
                  (row["setting"], algorithm)]
        assert mine["mean ± std (%)"].split(" ± ")[0] == row["mean (%)"], (page, row["setting"], algorithm)


def test_the_introduction_quotes_the_conclusions_and_the_results_index():
    intro = " ".join(outputs("01_introduction")[0])
    glued = outputs("07_conclusions")[2]
    for claim in ("c1", "c2", "c3"):
        assert f"**{claim.upper()}**" in intro and f"**{glued[f'{claim}_verdict']}**" in intro
    for key in ("c1_weakest", "c2_binary_sign", "c3_bp", "c3_dfa", "c3_drtp"):
        assert glued[key] in intro, key
    [agreement] = [t for t in outputs("04_results")[0] if "inter-quartile range overlaps ours" in t]
    # the same sentence, but for where the index marks the borderline verdicts: the Introduction has no table
    assert agreement.replace("(marked * below; ", "(") in intro


def test_the_deployment_finding_quotes_its_table_and_its_speed_paragraph():
    """The deployment chapter's opening sizes and ratios are its table's, its speed the glued one."""
    texts, tables, glued = outputs("06b_deployment")
    [finding] = [t for t in texts if t.startswith("**What we found.**")]
    table = [row for part in outputs("06b_deployment")[1] if part and {"file (bytes)", "smaller"} <= set(part[0])
             for row in part]  # one table per dataset
    sizes = re.findall(r"(\d{1,3}(?:,\d{3})+) bytes", finding)
    ratios = [r for pair in re.findall(r"(\d+\.\d)×(?: to (\d+\.\d)×)? smaller", finding) for r in pair if r]
    assert sizes and set(sizes) <= {row["file (bytes)"] for row in table}
    assert ratios and {f"{r}×" for r in ratios} <= {row["smaller"] for row in table}
    assert f"in {glued['deploy_bits_us']} µs at batch 1, {glued['deploy_speed_1']}" in finding
    assert f"{glued['deploy_bits_rate']} images per second" in finding


def test_the_methods_opening_counts_the_results_pages_differences():
    """Methods' "N of M of our medians lie above the paper's", with BN and without, is the count of
    positive Δ over the results pages' tables of that BN setting."""
    [opening] = [t for t in outputs("02_methods")[0] if t.startswith("**In short.**")]
    counted = re.search(r"with BN, \*\*(\d+) of (\d+)\*\* of our medians lie above the paper's[^(]* \(mean "
                        r"([+-]\d\.\d\d) points;.*without BN, (\d+) of (\d+)[^(]* \(mean ([+-]\d\.\d\d);", opening)
    assert counted, opening
    for batch_norm, (above, compared, mean) in ((True, counted.group(1, 2, 3)), (False, counted.group(4, 5, 6))):
        deltas = [float(row["Δ (points)"]) for (_, bn), page in RESULT_PAGES.items() if bn == batch_norm
                  for row in table_with(page, "Δ (points)", "paper IQR (%)") if row["Δ (points)"] != "–"]
        assert (int(above), int(compared)) == (sum(d > 0 for d in deltas), len(deltas)), batch_norm
        assert mean == f"{sum(deltas) / len(deltas):+.2f}", batch_norm


def page_text(page: str) -> str:
    """Everything a reader of the page reads: its Markdown cells and its outputs (tables as text)."""
    texts, tables, glued = outputs(page)
    cells = [clean("".join(c["source"])) for c in json.loads((CHAPTERS / f"{page}.ipynb").read_text())["cells"]
             if c["cell_type"] == "markdown"]
    rows = [" ".join(row.values()) for table in tables for row in table]
    return " ".join(cells + texts + rows + list(glued.values()))


#: the Reproducing chapter describes every budget (a table of them, the commands): naming one is its job
DESCRIBES_EVERY_BUDGET = {"08_reproducing"}


@pytest.mark.parametrize("page", sorted(p.stem for p in CHAPTERS.glob("*.ipynb")
                                        if p.stem != "04_results_template" and p.stem not in DESCRIBES_EVERY_BUDGET))
def test_a_page_that_names_a_shorter_budget_shows_its_records(page):
    """A page that speaks of our 5-epoch runs (or names the `cpu` budget) must show records of it,
    and say so where it lists its runs ("Produced from our runs of **5 epochs**, budget `cpu` … from
    results/cpu") — so no page carries leftover text about runs it does not show. (100 epochs is
    also the paper's own protocol, which every page may name.)"""
    from bnnlib.book.records import epochs_label, produced_from
    from bnnlib.protocol import BUDGETS
    text = page_text(page)
    for budget in BUDGETS.values():
        if budget.epochs == BUDGETS["paper"].epochs:
            continue
        label = epochs_label(budget)
        named = re.search(rf"(?<![\d.]){label}\b", text) or f"`{budget.name}`" in text
        shown = produced_from(budget) in text
        assert not named or shown, f"{page} names {label} (`{budget.name}`) but shows none of those runs"
