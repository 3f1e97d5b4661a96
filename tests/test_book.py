"""The book: every chapter executes at the smoke budget; the book builds with no warning and
every chapter page renders its figures in a real headless browser."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import glued_value
from test_links import dead_links

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries:
            pages.append(entry["file"])
            walk(entry.get("sections", []))
    walk(toc["chapters"])
    return pages


@pytest.mark.parametrize("only, expected", [
    (["04_results_mnist_bn"], ["04_results_mnist_bn.ipynb"]),  # not also …_fashion_mnist_bn
    (["04_results_mnist_bn.ipynb", "05"], ["04_results_mnist_bn.ipynb", "05_learning_curves.ipynb"]),
    (["04_results"], ["04_results.ipynb"] + [f"04_results_{d}_{b}.ipynb" for d in ("mnist", "fashion_mnist",
                                                                                 "cifar10") for b in ("nobn", "bn")]),
])
def test_only_selects_pages_by_name_or_prefix(only, expected):
    from bnnlib.book.pipeline import book_pages, select_pages
    assert [target for _, target, _ in select_pages(book_pages({}), only)] == expected


def test_only_naming_no_page_fails_before_executing_and_lists_the_pages(tmp_path):
    from bnnlib.book.pipeline import execute_book
    with pytest.raises(ValueError, match=r"'mnist_bn' names no page.*04_results_mnist_bn"):
        execute_book("smoke", tmp_path / "out", only=["mnist_bn"])
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_every_chapter_executes_at_the_smoke_budget(tmp_path, mnist_mirror):
    from bnnlib.book.pipeline import CHAPTERS, RESULT_PAGES, TEMPLATE, execute_book, result_page_name
    env_backup = dict(os.environ)
    os.environ.update(BNNLIB_DATA_MIRROR=str(mnist_mirror), BNNLIB_FIGURES_DIR=str(tmp_path / "figures"),
                      PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    try:
        executed = execute_book("smoke", tmp_path / "chapters", tmp_path / "results")
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    expected = [c for c in CHAPTERS if c != TEMPLATE] + [result_page_name(d, b) for d, b in RESULT_PAGES]
    assert sorted(p.name for p in executed) == sorted(expected)
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    # each page states the budget that produced it
    from bnnlib.book import records
    from bnnlib.protocol import get_budget
    for name in ("03_grid_search.ipynb", "04_results_mnist_nobn.ipynb", "05_learning_curves.ipynb"):
        text = json.dumps(nbformat.read(tmp_path / "chapters" / name, as_version=4))
        assert records.produced_from(get_budget("smoke")) in text
    assert (tmp_path / "figures" / "results_mnist_nobn.png").exists()
    assert (tmp_path / "figures" / "results_mnist_nobn.svg").exists()
    cifar = json.dumps(nbformat.read(tmp_path / "chapters" / "04_results_cifar10_nobn.ipynb", as_version=4))
    assert "CIFAR-10 was not available" in cifar and "BNNLIB_DATA_MIRROR" in cifar


def _chromium():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_every_committed_cell_that_saves_a_figure_shows_it():
    """A cell that draws and saves a figure also shows it (the browser test counts the images the
    notebooks hold, so a figure drawn but never shown passed it: the mechanism chapter's 10)."""
    missing = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code" and "save_figure(" in cell.source and cell.get("outputs") is not None \
                    and not any("image/png" in o.get("data", {}) for o in cell.outputs):
                missing.append(f"{path.name} cell {index}")
    assert not missing, f"figures saved but not shown: {missing}"


def test_a_readable_figure_leaves_the_next_cells_figures_shown():
    """The READABLE sizes are reverted after a figure, interactive mode (the inline backend's, set
    by the kernel's first figure) is not: every cell below still shows its figure."""
    from nbclient import NotebookClient
    draw = ("import matplotlib.pyplot as plt\nfrom bnnlib.book.render import readable\n"
            "with readable({'font.size': 9}):\n    fig, ax = plt.subplots()\nsize = plt.rcParams['font.size']")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(draw), nbformat.v4.new_code_cell(draw),
                      nbformat.v4.new_code_cell("fig, ax = plt.subplots()\nprint(size)")]
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    for cell in notebook.cells:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
    assert notebook.cells[-1].outputs[0]["text"].strip() != "9.0"  # the sizes themselves are reverted


@pytest.mark.slow
def test_book_builds_without_warnings_and_renders_every_figure(tmp_path):
    build = subprocess.run([str(VENV_BIN / "jupyter-book"), "build", str(ROOT), "-W", "--keep-going",
                            "--path-output", str(tmp_path)], capture_output=True, text=True,
                           env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"})
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    # math is served with the book (make mathjax), never from a CDN: offline readers see it rendered
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists(), "run `make mathjax` before building"
    titles = {}
    for page in html.glob("**/*.html"):
        text = page.read_text()
        assert "cdn.jsdelivr" not in text and "mathjax@3" not in text, f"{page.name} loads MathJax from a CDN"
        # no machine path, no traceback: a reader sees neither the build machine nor a crash
        for leak in (str(ROOT), str(ROOT.parent), "/tmp/", "Traceback (most recent call last)", "PosixPath("):
            assert leak not in text, f"{page.name} contains {leak!r}"
        title = text.split("<title>", 1)[-1].split("</title>", 1)[0].strip()
        if page.parent.name == "chapters":
            assert title not in titles, f"{page.name} and {titles.get(title)} share the title {title!r}"
            titles[title] = page.name
    # no dead internal link (a Markdown link the build left unresolved reaches the HTML verbatim)
    dead = dead_links(html)
    assert not dead, f"{len(dead)} dead internal links:\n" + "\n".join(dead[:40])
    # the sidebar names the first page by the toc's short title; the page keeps its full heading
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    root = (html / f"{toc['root']}.html").read_text()
    home = root.split('bd-sidenav__home-link">', 1)[-1].split("</a>", 1)[0]
    assert home.rsplit(">", 1)[-1].strip() == toc["title"], "the sidebar's first entry is not the toc's title"
    assert "<h1>Are alternatives to backpropagation useful for training Binary Neural Networks?" in root
    if _chromium() is None or not shutil.which("chromedriver"):
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.wait import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = _chromium()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_window_size(1280, 900)  # a laptop screen: every table fits the text column, none scrolls

    def open_page(path):
        driver.get(path.as_uri())
        # get() normally returns after the load event, but on a busy machine headless Chromium has
        # answered while the document was still parsing (CI, 2026-12-02): wait for it, within bounds
        WebDriverWait(driver, 60, poll_frequency=0.2).until(
            lambda d: d.execute_script("return document.readyState") == "complete",
            f"{path.name}: the page did not finish loading within 60 s")

    try:
        for page in toc_pages():
            source = ROOT / f"{page}.ipynb"
            expected_images = 0
            if source.exists():
                notebook = nbformat.read(source, as_version=4)
                expected_images = sum("image/png" in o.get("data", {}) for c in notebook.cells
                                      for o in c.get("outputs", []))
            open_page(html / f"{page}.html")
            assert driver.find_elements("css selector", "main h1, article h1"), f"{page}: no heading"
            images = driver.execute_script(
                "return Array.from(document.querySelectorAll('main img, article img'))"
                ".map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
            figures = [i for i in images if "logo" not in (i[0] or "")]
            assert len(figures) >= expected_images, f"{page}: {len(figures)} images, {expected_images} expected"
            broken = [src for src, complete, width in figures if not complete or width == 0]
            assert not broken, f"{page}: images not rendered: {broken}"
            too_wide = driver.execute_script(
                "return Array.from(document.querySelectorAll('main table')).filter("
                "t => t.scrollWidth > t.parentElement.clientWidth + 1).map(t => t.querySelector('th').textContent)")
            assert not too_wide, f"{page}: tables wider than the page at 1280 px (first headers {too_wide})"
            aligned = driver.execute_script(
                "return Array.from(document.querySelectorAll('main table.dataframe td.num'))"
                ".map(c => getComputedStyle(c).textAlign)")
            assert set(aligned) <= {"right"}, f"{page}: numbers not right-aligned ({set(aligned)})"
            # every section is listed in the page's contents as it opens (the theme shows the h3
            # entries of a section only once the reader has scrolled to it)
            hidden = driver.execute_script(
                "return Array.from(document.querySelectorAll('#pst-page-toc-nav a'))"
                ".filter(a => a.offsetParent === null).map(a => a.textContent.trim())")
            assert not hidden, f"{page}: sections missing from the page's contents until scrolled to: {hidden}"
            # the sidebar's brand is the book's short title: the paper's full question took six lines there
            brand_lines = driver.execute_script(
                "const t = document.querySelector('.logo__title'); if (!t) return 0;"
                "return t.getBoundingClientRect().height / parseFloat(getComputedStyle(t).lineHeight);")
            assert brand_lines <= 3.5, f"{page}: the sidebar's title takes {brand_lines:.1f} lines at 1280 px"
            # one search box: the theme's top bar repeated the sidebar's (_config.yml's navbar_persistent)
            searches = driver.execute_script(
                "return Array.from(document.querySelectorAll('.search-button-field'))"
                ".filter(b => b.getBoundingClientRect().height > 0).length")
            assert searches == 1, f"{page}: {searches} search boxes at 1280 px"
        open_page(html / "chapters" / "02_methods.html")
        def typeset(d):  # MathJax typesets after the page has loaded
            return d.execute_script("return document.querySelectorAll('mjx-container').length")
        WebDriverWait(driver, 60, poll_frequency=0.2).until(
            typeset, "the Methods chapter's math was not rendered by the book's own MathJax within 60 s")
        assert typeset(driver) > 10, "the Methods chapter's math was not rendered by the book's own MathJax"
        # on a phone-wide screen "96.09 ± 0.15" stays on one line (the table's labels wrap instead)
        driver.set_window_size(420, 900)
        open_page(html / "chapters" / "04_results_mnist_nobn.html")
        cell = driver.execute_script(
            "const td = Array.from(document.querySelectorAll('table.dataframe td')).find(c => c.textContent.includes('±'));"
            "if (!td) return null; const range = document.createRange(); range.selectNodeContents(td);"
            "return range.getClientRects().length;")
        assert cell == 1, f"a mean ± std cell on the MNIST results page is laid out on {cell} lines"
        # on a phone no page is wider than the screen: only a table may scroll, inside its own box
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 390, "height": 900, "deviceScaleFactor": 1, "mobile": True})
        for page in toc_pages():
            open_page(html / f"{page}.html")
            wide = driver.execute_script(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert wide[0] <= wide[1], f"{page}: {wide[0]} px wide on a 390 px screen (it scrolls sideways)"
            # ... and a comparison with the paper shows its verdict, Δ and both medians without
            # scrolling (results pages: "paper median (%)"; Batch normalisation: "paper Δ of medians …")
            cut = driver.execute_script(
                "return Array.from(document.querySelectorAll('main table.dataframe th')).filter(h => "
                "  h.textContent === 'paper median (%)' || h.textContent.startsWith('paper Δ of medians')).map(h =>"
                "  h.getBoundingClientRect().right - h.closest('table').parentElement.getBoundingClientRect().right)"
                ".filter(overhang => overhang > 1)")
            assert not cut, f"{page}: the paper's median lies {cut} px beyond a 390 px screen"
        # ... but the Methods' two wide diagrams keep 640 px (labels ~10 px, not ~6) and scroll in their own box
        open_page(html / "chapters" / "02_methods.html")
        diagrams = driver.execute_script(
            "return [...document.querySelectorAll('div.tag_wide-diagram img')].map(i => "
            "[Math.round(i.getBoundingClientRect().width), getComputedStyle(i.closest('.cell_output')).overflowX])")
        assert diagrams == [[640, "auto"]] * 2, diagrams
    finally:
        driver.quit()


#: the width the book shows a figure at: its text column in a 1280 px window (Methods page, measured)
COLUMN_PX = 676
#: ... and on a 390 px phone (Batch normalisation page, measured)
PHONE_COLUMN_PX = 358


def smallest_text_px(fig, column_px: int, ticks: bool = True) -> tuple:
    """(size in px, text) of a figure's smallest text as the page shows it: the notebook stores
    matplotlib's inline PNG (100 dpi, tight bounding box), which the page scales to its column.
    ``ticks``: tick labels count too (a diagram's small inset plot is left out)."""
    import io
    import matplotlib.pyplot as plt
    from PIL import Image
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100, bbox_inches="tight")
    scale = column_px / Image.open(png).size[0]
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    texts = [t for ax in fig.axes for t in (*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label)]
    texts += [t for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())] if ticks else []
    texts += [t for lg in legends for t in lg.get_texts()]
    plt.close(fig)
    return min((t.get_fontsize() * 100 / 72 * scale, t.get_text()) for t in texts if t.get_text().strip())


@pytest.mark.parametrize("diagram", ["binarised_layer_diagram", "learning_signal_diagram"])
def test_the_methods_diagrams_text_is_at_least_11_px_on_the_page(diagram):
    """Scaled to the text column of a 1280 px window, a diagram's smallest text is 11 px or more."""
    import matplotlib
    matplotlib.use("Agg")
    from bnnlib.book import diagrams, render
    render.style()
    smallest = smallest_text_px(getattr(diagrams, diagram)(), COLUMN_PX, ticks=False)
    assert smallest[0] >= 11, f"{diagram}: {smallest[1]!r} is {smallest[0]:.1f} px at the page's {COLUMN_PX} px"


@pytest.mark.parametrize("cell,expected", [
    ("96.09 ± 0.15", "96.09\u00a0±\u00a00.15"),            # numbers keep together
    ("[+0.12, +3.40]", "[+0.12,\u00a0+3.40]"),
    ("0.1, 1e-04", "0.1,\u00a01e-\u206004"),
    ("-5e-06", "-5e-\u206006"),                             # a leading minus is no break point
    ("784 × 700", "784\u00a0×\u00a0700"),
    ("95.85–96.36", "95.85–\u206096.36"),
    ("2.4\u00a0×\u00a010⁻⁷", "2.4\u00a0×\u00a010⁻⁷"),           # a p-value as stats.p_text writes it
    ("–", "–"),                                              # a missing value stays a plain dash
    ("+1.27 *", "+1.27\u00a0*"),                             # a significance star stays with its number
    ("-5.38 [-6.21, -4.54]", "-5.38 [-6.21,\u00a0-4.54]"),  # an estimate may wrap before its interval
    ("continuous sign", "continuous sign"),                  # words may wrap
    ("Fashion-MNIST, no BN", "Fashion-\u2060MNIST, no BN"),      # ... but a dataset's name does not
    ("24 significant at 5 %", "24 significant at 5\u00a0%"),      # ... nor a number its unit
    ("cpu (5 epochs; the paper trained for 100)", "cpu (5\u00a0epochs; the paper trained for 100)"),
    ("epoch 1 of 3 epochs", "epoch 1 of 3\u00a0epochs"),
    ("0.1, 1e-4 / 0.1, 1e-5", "0.1, 1e-\u20604 / 0.1, 1e-\u20605"),  # ... nor an exponent in words its minus
    (0.5, 0.5),
])
def test_numeric_cells_do_not_break_and_words_do(cell, expected):
    import pandas as pd
    from bnnlib.book.render import _unbreakable, html_table
    assert _unbreakable(cell) == expected
    assert str(expected) in html_table(pd.DataFrame({"column": [cell]})).data


@pytest.mark.parametrize("iso, shown", [
    ("2026-12-01T03:45:41+00:00", "2026-12-01 03:45 UTC"),
    ("2026-12-01T04:45:41+01:00", "2026-12-01 03:45 UTC"),   # another offset: the same instant in UTC
    ("2026-12-31T23:59:59-01:00", "2027-01-01 00:59 UTC"),
    (None, "not recorded"),
])
def test_a_records_time_reads_as_a_date_and_minute_in_utc_on_one_line(iso, shown):
    import configparser
    import re
    from bnnlib.book.records import record_time
    text = record_time(iso)
    assert text.replace("\u2060", "").replace("\u00a0", " ") == shown
    if iso is None:
        return
    assert " " not in text and "-\u2060" in text  # no break point: no space, a word joiner after each hyphen
    sanitize = configparser.ConfigParser()
    sanitize.read(ROOT / "tests" / "nbval_sanitize.cfg")
    assert any(re.fullmatch(section["regex"], text) for section in sanitize.values() if "regex" in section)


def test_p_values_read_one_way_in_tables_and_prose():
    from bnnlib.book.stats import p_text
    assert [p_text(p) for p in (0.5, 0.031, 0.0024, 2.4e-7, 0.0, float("nan"))] == \
        ["0.5", "0.031", "0.0024", "2.4\u00a0×\u00a010⁻⁷", "<\u00a010⁻³⁰⁰", "–"]


@pytest.mark.parametrize("values", [
    [0.25, 0.25, 0.25],                         # no spread: the interval is the value itself
    [1.0, 2.0],
    [0.1, -0.3, 0.7, 0.2, 1e-6, 0.05, 0.4, -0.1, 0.3, 0.9],  # ten seeds, as a 100-epoch point has
    [3e-7, 1e-6, float("nan"), 2e-6, 5e-7],    # a missing value: seaborn switches to nanmean
    list(range(17)),
])
def test_the_mechanisms_fast_bootstrap_band_is_seaborns_to_the_last_bit(values):
    import numpy as np
    import pandas as pd
    from seaborn._statistics import EstimateAggregator
    from bnnlib.book.render import mean_ci95
    seaborn = EstimateAggregator("mean", ("ci", 95), n_boot=1000, seed=0)(pd.DataFrame({"y": values}), "y")
    ours = mean_ci95(pd.Series(values))
    assert ours == (seaborn["ymin"], seaborn["ymax"])  # exact: the committed figures stay pixel for pixel
    if np.ptp(values) == 0:
        assert ours == (values[0], values[0])


def test_numeric_columns_are_marked_for_right_alignment_and_text_columns_are_not():
    import re
    import pandas as pd
    from bnnlib.book.render import html_table
    frame = pd.DataFrame({"algorithm": ["BP", "DFA"], "median (%)": [96.05, None], "range": ["95.85–96.36", "–"],
                          "in range": ["no", "yes"], "seeds": [10, 10], "diverged": [False, True],
                          "rise": ["+1.27 *", "+0.05"], "p": ["2.4\u00a0×\u00a010⁻⁷", "0.031"]})
    html = html_table(frame).data
    header = re.findall(r'<th class="(\w+)">([^<]*)</th>', html)
    assert header == [("text", "algorithm"), ("num", "median (%)"), ("num", "range"), ("text", "in range"),
                      ("num", "seeds"), ("text", "diverged"), ("num", "rise"), ("num", "p")]
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)  # the body rows (the header row has a style)
    assert len(rows) == 2
    for row in rows:
        assert re.findall(r'<td class="(\w+)">', row) == [kind for kind, _ in header]


@pytest.mark.parametrize("lr, text", [(1e-4, "1e-4"), (0.0001, "1e-4"), (1e-5, "1e-5"), (1e-6, "1e-6"),
                                       (2.5e-5, "2.5e-5"), (1e-3, "1e-3")])
def test_a_learning_rate_reads_one_way_on_every_page(lr, text):
    """Python writes 1e-4 as "0.0001" (:g) and 1e-5 as "1e-05": a table holding both read as two
    kinds of number; the book writes every learning rate as Methods does."""
    from bnnlib.book.labels import init_and_lr, learning_rate
    assert learning_rate(lr) == text
    assert init_and_lr(0.001, lr) == f"0.001, {text}"


def test_a_table_keeps_the_label_columns_it_names_on_one_line():
    import re
    import pandas as pd
    from bnnlib.book.render import html_table
    frame = pd.DataFrame({"stage": ["grid search"], "rules": ["paper's"], "runs": [72]})
    html = html_table(frame, keep_together=["stage"]).data
    assert re.findall(r'<td class="([\w ]+)">', html) == ["text keep", "text", "num"]
    assert re.findall(r'<th class="([\w ]+)">', html) == ["text", "text", "num"]  # headers may wrap
    with pytest.raises(ValueError, match="keep_together names no column: stages; columns: stage, rules, runs"):
        html_table(frame, keep_together=["stages"])
    # a column of settings' names is marked for one line above a phone's width (the book's CSS)
    frame = pd.DataFrame({"setting": ["continuous tanh", "binary sign"], "note": ["binary sign", "other"]})
    assert re.findall(r'<td class="([\w ]+)">', html_table(frame).data) == ["text setting", "text"] * 2


def test_a_long_table_splits_into_one_table_per_label_each_under_a_link_to_its_page():
    import pandas as pd
    from bnnlib.book.render import tables_by
    from bnnlib.book.toc import page_of_label
    frame = pd.DataFrame({"data": ["Fashion-MNIST, BN (100 epochs)"] * 2 + ["MNIST, no BN (5 epochs)", "other"],
                          "algorithm": ["BP", "DFA", "BP", "DRTP"], "Δ (points)": ["+0.10", "-0.20", "+1.00", "+0.00"]})
    parts = tables_by(frame, "data", page_of_label)
    # in the frame's order, not sorted; a label no page shows stays plain bold
    assert [p.data for p in parts[::2]] == ["**[Fashion-MNIST, BN (100 epochs)](04_results_fashion_mnist_bn.ipynb)**",
                                            "**[MNIST, no BN (5 epochs)](04_results_mnist_nobn.ipynb)**", "**other**"]
    assert [p.data.count("<tr") for p in parts[1::2]] == [3, 2, 2]  # header + its rows
    assert all(">data<" not in p.data and ">algorithm<" in p.data for p in parts[1::2])


def _summary(best_by_config):
    """A run_summary-like frame: ten seeds per (algorithm, weights, activation)."""
    import pandas as pd
    rows = []
    for (algorithm, weights, activation), values in best_by_config.items():
        for seed, value in enumerate(values, 2):
            rows.append(dict(run_id=f"{algorithm}{weights}{activation}{seed}", algorithm=algorithm, weights=weights,
                             activation=activation, seed=seed, best_test_accuracy=value, diverged=False))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("collapsed, expected", [
    ([False, False, False], "0"),
    ([True, False, True], "2"),
    ([None, None], "–"),  # recorded before class counts were: not known, not 0
    ([True, None, False], "1 of 2 recorded"),
])
def test_collapsed_runs_are_counted_only_where_recorded(collapsed, expected):
    import pandas as pd
    from bnnlib.book.results import collapsed_count
    assert collapsed_count(pd.Series(collapsed, dtype="boolean")) == expected


def test_grid_outcomes_name_the_collapsed_runs_and_whether_one_was_selected():
    import pandas as pd
    from bnnlib.book import grid_search
    from bnnlib.protocol import get_budget

    def run(run_id, algorithm, init, lr, best, collapsed):
        return dict(run_id=run_id, algorithm=algorithm, weights="binary", activation="sign", init=init, lr=lr,
                    best_train_accuracy=best, diverged=False, collapsed=collapsed)
    grid = pd.DataFrame([run("a", "BP", 0.1, 1e-4, 0.9, False), run("b", "BP", 0.001, 1e-4, 0.11, True),
                         run("c", "DFA", 0.001, 1e-4, 0.5, True), run("d", "DFA", 0.1, 1e-4, 0.4, False),
                         run("e", "DRTP", 0.1, 1e-5, 0.3, True), run("f", "DRTP", 0.1, 1e-4, 0.2, False)])
    grid["collapsed"] = grid["collapsed"].astype("boolean")
    text = grid_search.grid_outcomes_sentence(grid, get_budget("paper"), batch_norm=False)
    assert text.startswith("Without BN (100\u00a0epochs): of the 6 grid runs, 0 diverged")
    assert "3 collapsed" in text and "(BP 1, DFA 1, DRTP 1; init 0.001 for 2, 0.1 for 1)" in text
    # DFA's best run collapsed after reaching 50 %, DRTP's at 30 %: both selected, and said so
    assert "2 of them selected, on a training accuracy reached before collapsing" in text
    grid["collapsed"] = pd.array([pd.NA] * 6, dtype="boolean")
    assert "whether any collapsed is not recorded" in grid_search.grid_outcomes_sentence(grid, get_budget("cpu"), True)
    grid.loc[0, "collapsed"] = False
    assert "0 collapsed; collapse is not recorded for 5 runs" in \
        grid_search.grid_outcomes_sentence(grid, get_budget("cpu"), True)


def test_grid_figure_marks_collapsed_runs_apart():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from bnnlib.book import grid_search
    grid = pd.DataFrame([dict(run_id=str(i), algorithm=a, weights=w, activation="sign", init=0.1, lr=1e-4,
                              best_train_accuracy=0.1 if c is True else 0.9, diverged=False, collapsed=c)
                         for i, (a, w, c) in enumerate([("BP", "binary", True), ("BP", "continuous", False),
                                                        ("DFA", "binary", False), ("DFA", "binary", pd.NA)])])
    grid["collapsed"] = grid["collapsed"].astype("boolean")
    figure = grid_search.grid_robustness_boxplot(grid, "grid")
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels == ["continuous", "binary", "collapsed (1)"]  # an unknown one is not counted
    grid["collapsed"] = False
    labels = [t.get_text() for t in grid_search.grid_robustness_boxplot(grid, "grid").axes[0].get_legend().get_texts()]
    assert labels == ["continuous", "binary"]


def test_final_runs_figure_marks_collapsed_runs_apart():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from bnnlib.book import results
    from bnnlib.book.labels import COLLAPSED_COLOUR, SETTINGS
    finals = pd.DataFrame([dict(run_id=str(i), algorithm=a, weights=w, activation=act, seed=i,
                                best_test_accuracy=0.1135 if c is True else 0.9, diverged=False, collapsed=c)
                           for i, (a, w, act, c) in enumerate([("BP", "binary", "sign", True),
                                                               ("BP", "binary", "sign", False),
                                                               ("DFA", "continuous", "tanh", False),
                                                               ("DFA", "continuous", "tanh", pd.NA)])])
    finals["collapsed"] = finals["collapsed"].astype("boolean")
    figure = results.best_test_boxplot(finals, "finals")
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert labels[-1] == "collapsed (1)" and len(labels) == len(SETTINGS) + 1
    # 11.35 lies far below 90: the axis is broken, the cross drawn in the lower panel
    assert len(figure.axes) == 2 and figure.axes[1].get_ylim()[0] < 11.35 < figure.axes[1].get_ylim()[1]
    collections = [c for ax in figure.axes for c in ax.collections]
    crosses = [c for c in figure.axes[1].collections if len(c.get_offsets()) and
               matplotlib.colors.same_color(c.get_facecolor()[0][:3], COLLAPSED_COLOUR)]
    assert [len(c.get_offsets()) for c in crosses] == [1]  # the collapsed seed, and only it, is a cross
    assert crosses[0].get_offsets()[0][1] == pytest.approx(11.35)
    sign_dots = [c for c in collections if len(c.get_offsets()) and c not in crosses
                 and c.get_offsets()[0][0] == pytest.approx(crosses[0].get_offsets()[0][0], abs=0.05)]
    assert sign_dots, "the cross sits where its setting's dots are dodged to"
    finals["collapsed"] = False
    labels = [t.get_text() for t in results.best_test_boxplot(finals, "finals").axes[0].get_legend().get_texts()]
    assert "collapsed" not in " ".join(labels)


def test_final_runs_figure_marks_the_papers_median_beside_each_cell_and_breaks_only_a_wide_gap():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from bnnlib.book import results
    from bnnlib.book.results_figure import axis_spans
    assert axis_spans([90.0, 94.0, 97.0, 98.0]) == [(90.0, 98.0)]  # largest gap 4 points, half of 8, under 5
    assert axis_spans([59.5, 61.0, 90.0, 98.0]) == [(90.0, 98.0), (59.5, 61.0)]
    assert axis_spans([96.0, 97.0, 99.0]) == [(96.0, 99.0)]  # a gap over half the range but under 5 points
    finals = pd.DataFrame([dict(run_id=f"{a}{s}", algorithm=a, weights="binary", activation="sign", seed=s,
                                best_test_accuracy=0.9 + s / 1000, diverged=False, collapsed=False)
                           for a in ("BP", "DFA") for s in range(3)])
    paper = pd.DataFrame([dict(dataset="mnist", batch_norm=False, algorithm=a, weights="binary", activation="sign",
                               paper_q1=m - 0.001, paper_median=m, paper_q3=m + 0.001)
                          for a, m in (("BP", 0.8950), ("DFA", 0.9050), ("DRTP", 0.9000))])
    figure = results.best_test_boxplot(finals, "finals", paper)
    [marks] = [line for line in figure.axes[0].get_lines() if line.get_marker() == "_"]
    # binary sign is the fourth setting: dodged to +0.3 from each rule's tick; the paper's three rules
    # always have their slot, so DRTP's median shows although DRTP has no runs here
    assert list(marks.get_xdata()) == pytest.approx([0.3, 1.3, 2.3])
    assert list(marks.get_ydata()) == pytest.approx([89.5, 90.5, 90.0])
    assert "the paper's median" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    # the caption names a break only where the figure has one: here every cell lies within 2 points
    from bnnlib.book.results_figure import caption
    assert len(figure.axes) == 1 and "broken" not in caption(finals, paper)
    finals.loc[finals["algorithm"] == "BP", "best_test_accuracy"] = 0.60  # BP binary sign as without BN
    assert len(results.best_test_boxplot(finals, "finals", paper).axes) == 2
    assert "the y axis is broken in two panels" in caption(finals, paper)


def test_accuracy_table_and_paper_comparison_print_the_same_median():
    from bnnlib.book import results
    # median 0.60085: numpy's round(2) of 60.085 gives 60.08, the correctly rounded decimal is 60.09
    seeds = [0.5955, 0.5990, 0.6000, 0.6005, 0.6008, 0.6009, 0.6010, 0.6050, 0.6060, 0.6100]
    summary = _summary({("BP", "binary", "sign"): seeds})
    accuracy = results.accuracy_table(summary)
    comparison = results.paper_comparison(summary, "mnist", False)
    ours = accuracy[(accuracy["algorithm"] == "BP") & (accuracy["setting"] == "binary sign")]["median (%)"].iloc[0]
    beside = comparison[(comparison["algorithm"] == "BP") & (comparison["setting"] == "binary sign")]
    assert ours == beside["our median (%)"].iloc[0] == "60.09"


def test_paper_comparison_reports_median_iqr_range_and_agreement():
    from bnnlib.book import results
    # the paper (section 1b): BP binary sign on MNIST without BN, quartiles 0.5805, 0.5941, 0.5992
    inside = [0.55 + i / 100 for i in range(10)]  # median 0.595, quartiles 0.5725 and 0.6175
    outside = [0.70 + 4 * i / 1000 for i in range(10)]  # DFA binary sign: paper 0.9602–0.9609, ours ~0.72
    table = results.paper_comparison(_summary({("BP", "binary", "sign"): inside, ("DFA", "binary", "sign"): outside}),
                                    "mnist", False)
    assert len(table) == 12 and (table.attrs["compared"], table.attrs["agree"]) == (2, 1)
    assert table.attrs["borderline"] == [] and results.borderline_sentence(table) == ""
    bp = table[(table["algorithm"] == "BP") & (table["setting"] == "binary sign")].iloc[0]
    assert bp["paper median (%)"] == "59.41" and bp["paper IQR (%)"] == "58.05–59.92" and bp["our median (%)"] == "59.50"
    assert bp["our IQR (%)"] == "57.25–61.75" and "our range (%)" not in table  # the figure shows every seed
    assert bp[results.AGREEMENT] == "yes" and bp["Δ (points)"] == "+0.09"
    dfa = table[(table["algorithm"] == "DFA") & (table["setting"] == "binary sign")].iloc[0]
    assert dfa[results.AGREEMENT] == "no" and dfa["our IQR (%)"] == "70.90–72.70"
    assert (table[table["setting"] == "continuous tanh"][results.AGREEMENT] == "–").all()  # no runs of ours


def test_a_verdict_within_the_papers_reading_precision_is_named_with_its_deciding_quartiles():
    """Our IQR 0.005 points below the paper's (DFA binary sign, MNIST without BN: paper Q1 0.9602):
    "no", though both quartiles read 96.02 at two decimals; the page names the cell and gives the
    two quartiles to three decimals, and says the verdict could go either way."""
    from bnnlib.book import results
    table = results.paper_comparison(_summary({("DFA", "binary", "sign"): [0.96015] * 10}), "mnist", False)
    dfa = table[(table["algorithm"] == "DFA") & (table["setting"] == "binary sign")].iloc[0]
    assert dfa[results.AGREEMENT] == "no" and dfa["our IQR (%)"] == "96.02–96.02"
    assert results.borderline_sentence(table) == (
        "In 1 configuration (binary sign DFA: our Q3 96.015 %, the paper's Q1 96.020 %; marked * in the table) the two "
        "IQRs lie within 0.01 points of touching, the precision of the paper's quartiles: that verdict could go either way.")
    # the table marks that row, and only that one; the counts read through the mark
    shown = results.marked_verdicts(table)
    assert shown[shown["our median (%)"] != "–"][results.AGREEMENT].tolist() == ["no*"]
    assert table[results.AGREEMENT].str.endswith("*").sum() == 0  # the comparison itself stays unmarked
    assert results.verdicts(shown).tolist() == table[results.AGREEMENT].tolist()


def test_a_results_page_states_its_finding_from_the_comparison_it_shows():
    from bnnlib.book import results
    from bnnlib.protocol import get_budget
    inside = [0.55 + i / 100 for i in range(10)]  # BP binary sign: overlaps the paper's IQR, Δ +0.09
    outside = [0.70 + 4 * i / 1000 for i in range(10)]  # DFA binary sign: far below the paper's
    comparison = results.paper_comparison(_summary({("BP", "binary", "sign"): inside,
                                                     ("DFA", "binary", "sign"): outside}), "mnist", False)
    text = results.finding(comparison, get_budget("paper"))
    assert text.startswith("After **100 epochs, as in the paper**, the paper's inter-quartile range overlaps ours for "
                           "**1 of 2** configurations, and our medians lie -24.26 to +0.09 points from the paper's.")
    assert "DFA's median is **71.80 %** and BP's **59.50 %** (the paper: 96.06 % and 59.41 %)" in text
    assert results.finding(comparison.assign(**{results.AGREEMENT: "–"}), get_budget("cpu")) == \
        "After **5 epochs; the paper trained for 100**: the paper published no numbers for this setting."


def test_a_page_without_its_data_shows_the_papers_numbers_for_the_setting():
    from bnnlib.book import results
    table = results.paper_only_table("cifar10", True)
    assert len(table) == 12 and list(table.columns) == ["setting", "algorithm", "paper median (%)", "paper IQR (%)"]
    row = table[(table["algorithm"] == "DFA") & (table["setting"] == "binary tanh")].iloc[0]
    assert row["paper median (%)"] == "52.22" and row["paper IQR (%)"] == "51.78–52.58"  # section 1b
    assert results.paper_only_table("cifar10", False).empty  # the paper has no CIFAR-10 runs without BN


# (our seeds, overlap): the paper's IQR for MNIST, no BN, BP binary sign is 0.5805–0.5992
OVERLAPS = [([0.5993] * 10, "no"),  # our IQR just above the paper's
            ([0.5992] * 10, "yes"),  # touching its upper quartile
            ([0.5804] * 10, "no"),  # just below
            ([0.5805] * 10, "yes"),  # touching its lower quartile
            ([0.50] * 5 + [0.70] * 5, "yes")]  # ours wider than the paper's on both sides


@pytest.mark.parametrize("seeds,expected", OVERLAPS)
def test_agreement_is_the_overlap_of_the_two_inter_quartile_ranges(seeds, expected):
    from bnnlib.book import results
    table = results.paper_comparison(_summary({("BP", "binary", "sign"): seeds}), "mnist", False)
    assert table[table[results.AGREEMENT] != "–"][results.AGREEMENT].tolist() == [expected]


def _record(store, configs, budget):
    """Complete runs as the summaries read them: one row at the budget's last epoch each."""
    store.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=budget.epochs, loss=0.1,
                           train_accuracy=0.5 + c.lr + c.init, train_precision=0.5, train_f1=0.5,
                           test_accuracy=0.5, test_precision=0.5, test_f1=0.5) for c in configs])
    store.update_runs([dict(run_id=c.run_id, status="complete", epochs_done=budget.epochs, seconds=1.0,
                            device="cpu", torch="2.14.1", arithmetic=3, updated="2026-11-29T00:00:00+00:00")
                       for c in configs])


def test_the_grid_page_shows_each_bn_setting_at_its_own_budget(tmp_path, monkeypatch):
    from bnnlib import protocol
    from bnnlib.book import grid_search
    from bnnlib.store import ResultsStore

    paper = protocol.get_budget("paper")
    _record(ResultsStore(tmp_path / "paper"), protocol.grid_configs("mnist", False, paper), paper)
    _record(ResultsStore(tmp_path / "cpu"), protocol.grid_configs("mnist", True, protocol.get_budget("cpu")),
            protocol.get_budget("cpu"))
    # what each setting's grid is read from (reading would train the runs that are missing)
    monkeypatch.setattr(grid_search, "grid_runs", lambda dataset, batch_norm, budget, store, data, device: budget.name)
    shown = grid_search.grid_runs_by_setting("best", tmp_path, "mnist", None, "cpu")
    assert {bn: (budget.name, summary) for bn, (budget, _, summary) in shown.items()} == \
        {False: ("paper", "paper"), True: ("cpu", "cpu")}
    statements = grid_search.agreement_statements("mnist", str(tmp_path))  # every grid the page reads
    assert [s.split("**")[1] for s in statements] == ["5 epochs", "100 epochs"]
    assert "72 runs (72 complete" in statements[0] and "72 runs (72 complete" in statements[1]
    assert grid_search.grid_budget_sentence(shown[False][0]).endswith("our runs of **100 epochs** (as in the paper).")
    assert grid_search.grid_budget_sentence(shown[True][0]).endswith("our runs of **5 epochs** (the paper trained for 100).")


def test_best_budget_is_paper_only_where_all_of_a_pages_runs_are_recorded(tmp_path):
    from bnnlib import protocol
    from bnnlib.book import deployment, records, reproducing, results
    from bnnlib.store import ResultsStore
    from bnnlib.sweep import run_summary, select_hyperparameters

    paper = protocol.get_budget("paper")
    store = ResultsStore(tmp_path / "paper")

    def record(configs):
        _record(store, configs, paper)

    ResultsStore(tmp_path / "cpu").update_runs([dict(run_id="a" * 16, status="complete", epochs_done=5)])
    grid = protocol.grid_configs("mnist", False, paper)
    record(grid)
    assert records.open_store("best", tmp_path, [("mnist", False)], grid_only=True)[0].name == "paper"
    assert records.open_store("best", tmp_path, [("mnist", False)])[0].name == "cpu"  # finals missing
    selection = select_hyperparameters(run_summary(store.epochs(), store.runs()))
    finals = protocol.final_configs(selection, "mnist", False, paper)
    record(finals[:-1])
    assert records.open_store("best", tmp_path, [("mnist", False)])[0].name == "cpu"  # one final missing
    record(finals[-1:])
    budget, chosen = records.open_store("best", tmp_path, [("mnist", False)])
    assert budget.name == "paper" and chosen.directory == tmp_path / "paper"
    assert "our runs of **100 epochs** (the `paper` budget" in records.budget_choice("best", budget)
    assert records.open_store("best", tmp_path, [("mnist", False), ("mnist", True)])[0].name == "cpu"
    assert "not all recorded yet" in records.budget_choice("best", protocol.get_budget("cpu"))
    assert records.open_store("paper", tmp_path)[0].name == "paper"  # an explicit budget is kept
    # the results overview shows each setting at its own best budget: MNIST without BN at paper
    # (every run recorded), MNIST with BN nowhere yet (left out)
    overview = results.results_overview_by_setting("best", tmp_path, [("mnist", False), ("mnist", True)])
    assert len(overview) == 12 and set(overview["data"]) == {"MNIST, no BN (100 epochs)"}
    assert overview.attrs["by_budget"] == {"paper": (0, 12, 0)}  # synthetic accuracies: 50 % everywhere
    assert results.overview_agreement(overview, "it agrees").startswith("After **100 epochs** (as in the paper)")
    assert "could go either way" not in results.overview_agreement(overview, "it agrees")  # none near touching
    overview.attrs["by_budget"] = {"paper": (5, 12, 2)}
    assert results.overview_agreement(overview, "it agrees").endswith(
        "it agrees for **5 of 12** configurations. For 2 of the 12 the two IQRs lie within 0.01 points of touching, "
        "the precision of the paper's quartiles: those verdicts could go either way (marked * below; each results page "
        "names them).")
    # the Introduction quotes it without a table: no "marked * below"
    assert results.overview_agreement(overview, "it agrees", where="").endswith(
        "those verdicts could go either way (each results page names them).")
    pages = reproducing.pages_overview("best", tmp_path).set_index("page")
    assert pages.loc["04_results", "budget"] == "paper + cpu" and pages.loc["04_results", "runs"] == 120
    assert pages.loc["04_results_mnist_nobn", "budget"] == "paper" and pages.loc["07_conclusions", "budget"] == "cpu"
    # the grid without BN is complete at paper, the grid with BN is not: each at its own budget
    assert pages.loc["03_grid_search", "budget"] == "paper + cpu" and pages.loc["03_grid_search", "runs"] == 72
    # a page whose settings are not all recorded at paper opens at cpu as a whole: the sentence names both;
    # one whose settings all are names only the paper budget (no fallback it does not show)
    assert records.budget_choice("best", protocol.get_budget("cpu"), per_setting="dataset").startswith(
        "Each dataset shows our runs of **100 epochs** (the `paper` budget) once all of them are recorded")
    assert records.budget_choice("best", protocol.get_budget("paper"), per_setting="dataset") == (
        "Each dataset shows our runs of **100 epochs** (the `paper` budget: exactly the paper's protocol): all of "
        "them are recorded.")
    # the deployment page: each setting's exported models at that setting's budget
    def exported(store_, run_id, algorithm, batch_norm):
        store_.update_table("packed.csv", [dict(run_id=run_id, dataset="mnist", algorithm=algorithm,
                                                batch_norm=batch_norm, file_bytes=156185, float32_bytes=4470400,
                                                test_images=10000, agreement=1.0)])
    exported(store, "b" * 16, "BP", False)
    exported(ResultsStore(tmp_path / "cpu"), "c" * 16, "DFA", True)
    exported(ResultsStore(tmp_path / "cpu"), "d" * 16, "DRTP", False)  # not shown: MNIST without BN is at paper
    settings = [("mnist", False), ("mnist", True)]
    packed = deployment.packed_by_setting("best", tmp_path, settings)
    assert list(zip(packed["run_id"], packed["budget"])) == [("b" * 16, "paper"), ("c" * 16, "cpu")]
    table = deployment.deployment_table(packed)
    assert list(zip(table["dataset"], table["BN"], table["algorithm"])) == [("MNIST (100 epochs)", "without", "BP"),
                                                                          ("MNIST (5 epochs)", "with", "DFA")]
    assert deployment.deployment_example(packed) == str(tmp_path / "cpu" / "packed" / f"{'c' * 16}.bnn")  # with BN
    assert deployment.deployment_gaps(packed, settings).startswith(
        "Not exported: DFA and DRTP on MNIST without BN; BP and DRTP on MNIST with BN (")
    assert reproducing.pages_overview("best", tmp_path).set_index("page").loc["06b_deployment", "budget"] == "paper + cpu"


def test_results_pages_and_index_at_cpu_show_the_paper_budgets_configurations_finished_so_far(tmp_path):
    from bnnlib import protocol
    from bnnlib.book import records, reproducing, results
    from bnnlib.store import ResultsStore
    from bnnlib.sweep import run_summary, select_hyperparameters

    paper, cpu = protocol.get_budget("paper"), protocol.get_budget("cpu")
    store = ResultsStore(tmp_path / "paper")
    assert records.paper_finals_so_far("mnist", False, tmp_path) is None  # nothing recorded
    grid = protocol.grid_configs("mnist", False, paper)
    _record(store, grid[:-1], paper)
    assert records.paper_finals_so_far("mnist", False, tmp_path) is None  # the grid selects them: not done
    _record(store, grid[-1:], paper)
    finals = protocol.final_configs(select_hyperparameters(run_summary(store.epochs(), store.runs())),
                                    "mnist", False, paper)
    assert records.paper_finals_so_far("mnist", False, tmp_path) is None  # no configuration finished
    # the first two configurations with all 10 seeds, the third with 9 of them
    by_configuration = {}
    for config in finals:
        by_configuration.setdefault((config.algorithm, config.weights, config.activation), []).append(config)
    first, second, third = list(by_configuration.values())[:3]
    _record(store, first + second + third[:-1], paper)
    so_far = records.paper_finals_so_far("mnist", False, tmp_path)
    assert so_far.attrs["configurations"] == (2, 12) and len(so_far) == 20
    assert set(zip(so_far["algorithm"], so_far["weights"], so_far["activation"])) == \
        {(c.algorithm, c.weights, c.activation) for c in first + second}
    sentence, rows = results.paper_so_far_comparison(so_far, "mnist", False, cpu)
    assert len(rows) == 2 and set(rows["our median (%)"]) == {"50.00"}  # synthetic accuracies: 50 % everywhere
    assert set(rows[results.AGREEMENT]) == {"no"}
    assert "every seed of **2 of the 12** configurations" in sentence and "shows our runs of 5 epochs above" in sentence
    assert "the paper's inter-quartile range overlaps ours for **0 of 2**" in sentence
    # the results index adds the same rows, named, for the settings it shows at cpu
    index = results.results_overview_so_far("best", tmp_path, [("mnist", False), ("mnist", True)])
    assert set(index["data"]) == {"MNIST, no BN (100 epochs, 2 of 12 so far)"} and len(index) == 2
    assert "for **0 of 2** of them so far" in results.overview_so_far_sentence(index)
    # the Reproducing page counts those runs beside each page's own budget (one second each here)
    pages = reproducing.pages_overview("best", tmp_path).set_index("page")["100 epochs so far"]
    assert pages["04_results_mnist_nobn"] == pages["04_results"] == "20 runs, 0.01 h"
    assert pages["04_results_mnist_bn"] == pages["07_conclusions"] == "–"  # no setting complete at paper yet
    assert pages["05_learning_curves"] == "–"  # beside the paper's figure only: Fashion-MNIST
    _record(store, [c for c in finals if c not in first + second + third[:-1]], paper)
    assert records.paper_finals_so_far("mnist", False, tmp_path) is None  # all finished: the page is at paper
    assert results.results_overview_so_far("best", tmp_path, [("mnist", False)]).empty  # shown at paper
    pages = reproducing.pages_overview("best", tmp_path).set_index("page")
    assert pages.loc["04_results_mnist_nobn", "budget"] == "paper" and pages.loc["04_results", "100 epochs so far"] == "–"
    # the conclusions wait for every setting at paper, and show the settings complete there beside the cpu's
    assert pages.loc["07_conclusions", "budget"] == "cpu"
    assert pages.loc["07_conclusions", "100 epochs so far"] == "120 runs, 0.03 h"


@pytest.mark.slow
def test_re_executing_a_page_leaves_its_file_byte_identical(tmp_path, monkeypatch):
    """No timestamps, durations, random ids or machine paths in an executed page (issue #11)."""
    from bnnlib.book.pipeline import execute_book
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ['PATH']}")
    monkeypatch.setenv("BNNLIB_FIGURES_DIR", str(tmp_path / "figures"))
    first, second = tmp_path / "first", tmp_path / "second"
    execute_book("smoke", first, tmp_path / "results", only=["02_methods"])
    execute_book("smoke", second, tmp_path / "results", only=["02_methods"])
    a, b = (first / "02_methods.ipynb").read_bytes(), (second / "02_methods.ipynb").read_bytes()
    assert a == b
    text = a.decode()
    for volatile in ("start_time", "end_time", "duration", "input_path", "iopub."):
        assert volatile not in text


def test_relative_path_variables_are_taken_from_where_the_command_runs(tmp_path, monkeypatch):
    from bnnlib.data import DatasetError, resolve_mirror
    from bnnlib.book.pipeline import absolute_paths_in_environment
    (tmp_path / "mirror").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BNNLIB_DATA_MIRROR", "mirror")
    absolute_paths_in_environment()
    assert os.environ["BNNLIB_DATA_MIRROR"] == str(tmp_path / "mirror")
    monkeypatch.setenv("BNNLIB_DATA_MIRROR", "missing")
    with pytest.raises(DatasetError, match=r"set by \$BNNLIB_DATA_MIRROR"):
        resolve_mirror(None)
    with pytest.raises(DatasetError, match="set by --data-mirror"):
        resolve_mirror("also-missing")


def test_readers_get_one_closing_section_with_the_parameters(tmp_path):
    import nbformat
    from bnnlib.book.pipeline import PRODUCED_CELL_ID, for_readers
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# A page"),
                      nbformat.v4.new_code_cell('budget = "best"  # the default', metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell('# Parameters\nbudget = "cpu"\n',
                                                metadata={"tags": ["injected-parameters"]}),
                      nbformat.v4.new_code_cell("print(1)")]
    path = tmp_path / "07_page.ipynb"
    nbformat.write(notebook, path)
    for _ in range(2):  # executing a page again must not add a second section
        for_readers(path, {"budget": "cpu"}, "07_page.ipynb")
    cells = nbformat.read(path, as_version=4).cells
    produced = [c for c in cells if c.get("id") == PRODUCED_CELL_ID]
    assert len(produced) == 1 and cells[-1] is not None and cells[-1].get("id") == PRODUCED_CELL_ID
    assert 'budget = "cpu"' in produced[0].source and "--only 07_page" in produced[0].source
    assert 'budget = "best"  # the default' in produced[0].source
    assert all("remove-cell" in c.metadata["tags"] for c in cells[1:3])
    assert cells[3].metadata["tags"] == ["remove-input"]


def test_a_page_whose_data_is_unavailable_tags_its_cell_and_hides_the_cells_after_it(tmp_path):
    """The mark is on the output Page.data_unavailable displays, not in its words: the pipeline
    tags that cell and hides every cell after it; the admonition itself stays."""
    import nbformat
    from bnnlib.book.pipeline import PRODUCED_CELL_ID, for_readers
    from bnnlib.book.toc import DATA_UNAVAILABLE

    def page(mark: bool):
        said = nbformat.v4.new_output("display_data", data={"text/html": "<p>CIFAR-10 was not available</p>"},
                                      metadata={DATA_UNAVAILABLE: True} if mark else {})
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_markdown_cell("# Results"),
                          nbformat.v4.new_code_cell("finals = results.page_finals(page)", outputs=[said]),
                          nbformat.v4.new_markdown_cell("## Accuracy"),
                          nbformat.v4.new_code_cell("results.show_accuracy_table(finals)")]
        path = tmp_path / f"page_{mark}.ipynb"
        nbformat.write(notebook, path)
        for _ in range(2):  # idempotent
            for_readers(path, {"budget": "cpu"}, path.name)
        return [c for c in nbformat.read(path, as_version=4).cells if c.get("id") != PRODUCED_CELL_ID]

    cells = page(mark=True)
    assert cells[1].metadata["tags"] == ["remove-input", DATA_UNAVAILABLE]
    assert all("remove-cell" in c.metadata["tags"] for c in cells[2:])
    # a results page's opening says what it shows instead of the template's results
    path = tmp_path / "04_results_cifar10_bn.ipynb"
    notebook = nbformat.read(tmp_path / "page_True.ipynb", as_version=4)
    notebook.cells[0].source = "# Results for one dataset and BN setting\n\nThe 12 configurations, 10 seeds each."
    nbformat.write(notebook, path)
    for_readers(path, {"budget": "cpu", "dataset": "cifar10", "batch_norm": True}, "04_results_template.ipynb")
    assert nbformat.read(path, as_version=4).cells[0].source == (
        "# Results: CIFAR-10, with batch normalisation\n\nWhat the paper published for CIFAR-10 with batch "
        "normalisation, and the command that sets our runs beside it once CIFAR-10 is provided.")
    # the same words without the mark hide nothing: the page is not searched for a sentence
    cells = page(mark=False)
    assert DATA_UNAVAILABLE not in cells[1].metadata["tags"]
    assert not any("remove-cell" in c.metadata.get("tags", []) for c in cells[2:])


def test_a_page_object_shows_its_setting_and_marks_unavailable_data(monkeypatch):
    from bnnlib.book import pages
    from bnnlib.book.toc import DATA_UNAVAILABLE
    from bnnlib.protocol import get_budget

    shown = []
    monkeypatch.setattr(pages, "display", lambda obj, metadata=None: shown.append((obj, metadata)))
    page = pages.Page("best", None, get_budget("cpu"), None, None, dataset="fashion-mnist", batch_norm=True)
    assert (page.name, page.bn_text, page.slug) == ("Fashion-MNIST", "with", "fashion-mnist_bn")
    page.caption("*Figure*")
    page.data_unavailable()
    page.caption("*Figure*")  # no figure, no caption
    assert len(shown) == 2 and not page.available
    html, metadata = shown[1]
    assert metadata == {DATA_UNAVAILABLE: True} and "Fashion-MNIST was not available" in html.data
    assert "python -m bnnlib book --only 04_results_fashion_mnist_bn" in html.data


def test_paper_progress_counts_the_protocol_from_the_records(tmp_path):
    from bnnlib.book.reproducing import paper_progress
    table, sentence = paper_progress(str(tmp_path))  # no records yet
    protocol = table[table["runs"] == "the paper's protocol"]
    own = table[table["runs"] == "the book's own"]
    assert list(protocol["of"]) == [72, 120, 72, 120, 120, 120] and table["runs finished"].sum() == 0
    # SHALLOW's grids, 2 × 24 evaluation checks, 4 × 40 probed runs, SHALLOW's 4 × 40 finals
    assert list(own["of"]) == [24, 24] + [24, 24] + [40] * 8 and list(table.index) == list(range(len(table)))
    assert sentence.startswith("Of our runs of **100 epochs** (budget `paper`), 0 of 624 runs are finished (0 of 62\u202f400 run-epochs, 0.0\u00a0%)")
    assert "then the book's own runs at the same budget" in sentence and " 0 of 416 (" in sentence


def test_paper_progress_says_the_hours_left_for_the_long_runs_workers(tmp_path):
    import re
    from bnnlib.book.reproducing import paper_progress
    from bnnlib.store import ResultsStore
    from bnnlib.protocol import LONG_RUN_WORKERS, get_budget, grid_configs
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"LONG_RUN := .*--budget paper --workers (\d+)", makefile).group(1) == str(LONG_RUN_WORKERS)
    # the protocol, then the book's own runs, by the same workers
    assert re.search(r"long-run:.*\n\t\$\(LONG_RUN\) >>.*\n\t\$\(LONG_RUN\) --book-runs >>", makefile)
    store = ResultsStore(tmp_path / "paper")
    done = grid_configs("mnist", False, get_budget("paper"))[0]  # one grid run, 100 epochs at 6 s each
    store.update_runs([dict(run_id=done.run_id, **done.identity(), status="complete", epochs_done=100, seconds=600.0)])
    store.add_epochs([dict(run_id=done.run_id, epoch=e, loss=0.1) for e in range(1, 101)])
    table, sentence = paper_progress(str(tmp_path))
    # every kind at the only rate recorded: the protocol's 623 runs left, then the book's own 416 less
    # SHALLOW's 40 fully binary finals, which are probed runs (counted once)
    hours = (62400 - 100 + 41600 - 4000) * 6.0 / LONG_RUN_WORKERS / 3600
    # each stage is done after its own runs and all before it: runs left 71 (grid without BN),
    # 120, 72 (grid with BN), 120, 120, 120 — cumulatively 71, 191, 263, 383, 503, 623
    hours_per_run = 100 * 6.0 / LONG_RUN_WORKERS / 3600
    expected = [f"{runs * hours_per_run:.0f}" for runs in (71, 191, 263, 383, 503, 623)]
    assert list(table["done in about (h)"])[:6] == expected
    assert sentence.endswith(f"about {hours:.0f}\u00a0hours are left for the {LONG_RUN_WORKERS} single-threaded "
                             f"workers of `make long-run`.")
    store.update_runs([dict(run_id=done.run_id, **done.identity(), status="complete", epochs_done=100, seconds=600.0,
                            processor="AMD EPYC (AVX2)", updated="2026-11-29T10:00:00+00:00")])
    _, sentence = paper_progress(str(tmp_path))
    assert "At the speed of the machine that wrote the latest record (AMD EPYC (AVX2)) — each kind" in sentence
    store.update_runs([dict(run_id=done.run_id, **done.identity(), status="complete", epochs_done=100, seconds=600.0,
                            processor="AMD EPYC (AVX2)", boot="2baf139f", updated="2026-12-01T10:00:00+00:00")])
    _, sentence = paper_progress(str(tmp_path))
    assert ("At the speed of the machine that wrote the latest record (AMD EPYC (AVX2), boot 2baf139f: machines of "
            "one processor kind can differ in speed, each boot is timed apart) — each kind") in sentence


def test_processor_table_counts_each_processors_epochs_and_median_speed():
    import pandas as pd
    from bnnlib.book.reproducing import processor_table
    epochs = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b", "c"], "epoch": [1, 2, 3, 1, 2, 1],
                           "group_epoch_seconds": [4.0, 6.0, 5.0, 20.0, 24.0, 30.0], "members": [1, 1, 1, 2, 2, 1],
                           "processor": ["X", "X", "Y", "Y", "Y", None]})
    table = processor_table(epochs).set_index("processor")
    # Y: run a's epoch 3 (5 s) and run b's two (10 and 12 s per member): runs' medians 5 and 11 → 8
    assert table.loc["Y"].to_dict() == {"runs": 2, "run-epochs": 3, "hours": "0.0", "median s/run-epoch": "8.0"}
    assert table.loc["X", "median s/run-epoch"] == "5.0" and table.loc["not recorded (older runs)", "run-epochs"] == 1
    assert list(table.index) == ["Y", "X", "not recorded (older runs)"]  # most epochs first
    assert processor_table(epochs.drop(columns="processor")).loc[0, "processor"] == "not recorded (older runs)"


def test_epochs_computed_on_two_kinds_of_processor_are_compared_metric_by_metric():
    import pandas as pd
    from bnnlib.book.reproducing import cross_processor_copies
    from bnnlib.runner import CLASS_COUNTS, METRICS
    base = {name: 0.5 for name in ("loss", *METRICS)} | {name: 10 for name in CLASS_COUNTS} | dict(
        algorithm="DFA", weights="binary", activation="sign", batch_norm=True)
    rows = [dict(base, run_id="a", epoch=1, processor="X"), dict(base, run_id="a", epoch=1, processor="Y"),
            dict(base, run_id="a", epoch=2, processor="X"), dict(base, run_id="a", epoch=2, processor="Y"),
            dict(base, run_id="b", epoch=1, processor="X"), dict(base, run_id="b", epoch=1, processor="X"),
            dict(base, run_id="c", epoch=1, processor=None), dict(base, run_id="c", epoch=1, processor="Y")]

    def counts(frame):
        return [tuple(row) for row in cross_processor_copies(frame)[["weights", "epochs", "differing"]].itertuples(
            index=False)]
    assert counts(pd.DataFrame(rows)) == [("binary", 2, 0)]  # b: one kind twice; c: one kind unknown
    rows[3] = dict(rows[3], test_f1=0.5 + 2 ** -40)  # the last bit of one metric
    assert counts(pd.DataFrame(rows)) == [("binary", 2, 1)]
    rows += [dict(base, run_id="d", epoch=1, processor="X", weights="continuous", test_accuracy=0.9712),
             dict(base, run_id="d", epoch=1, processor="Y", weights="continuous", test_accuracy=0.9676)]
    table = cross_processor_copies(pd.DataFrame(rows))
    assert counts(pd.DataFrame(rows)) == [("binary", 2, 1), ("continuous", 1, 1)]  # kind by kind
    assert table["largest difference"].tolist() == pytest.approx([0.0, 0.36])  # test accuracy, points
    assert cross_processor_copies(pd.DataFrame(rows).drop(columns="processor")).empty


def test_the_reproducing_page_names_which_kinds_of_run_two_processors_computed_identically(tmp_path):
    """An exact integer run (binary weights, sign) agreed across processors, a float32 one did not:
    the sentence names each kind with its epochs, and explains the difference only where there is one."""
    from bnnlib.book.reproducing import paper_processors
    from bnnlib.store import ResultsStore
    store = ResultsStore(tmp_path / "paper")
    rule = dict(algorithm="DRTP", weights="binary", activation="sign", batch_norm=True, loss=0.1, test_accuracy=0.9,
                group_epoch_seconds=5.0, members=1)
    for name in ("X", "Y"):  # the second copy appended, as a restarted run's (a first write keeps one)
        store.add_epochs([dict(rule, run_id="a" * 16, epoch=1, processor=name)])
    _, sentence = paper_processors(str(tmp_path))
    assert sentence.startswith("1 epochs were computed on two kinds of processor")
    assert "Identical in every metric and class count: DRTP, binary weights, sign, BN (1\u00a0epochs)." in sentence
    assert "Not identical" not in sentence and "BLAS" not in sentence
    float32 = dict(rule, run_id="b" * 16, epoch=1, algorithm="DFA", weights="continuous")
    store.add_epochs([dict(float32, processor="X"), dict(float32, processor="Y", test_accuracy=0.8975)])
    _, sentence = paper_processors(str(tmp_path))
    assert ("Not identical: DFA, continuous weights, sign, BN (1\u00a0epochs, 1 differing, test accuracy by up to "
            "0.25\u00a0points).") in sentence and "the BLAS picks its kernels by processor" in sentence


def test_stage_times_are_listed_in_the_order_the_protocol_runs_them():
    import pandas as pd
    from bnnlib.book.reproducing import stage_table
    rows = [("fashion-mnist", True, "SHALLOW", 2), ("mnist", True, "BP", 2), ("fashion-mnist", False, "DFA", 3),
            ("mnist", False, "DFA", 1), ("mnist", True, "DRTP", 1), ("mnist", False, "SHALLOW", 2),
            ("mnist", False, "BP", 2), ("mnist", False, "DRTP", 2)]
    runs = pd.DataFrame([dict(run_id=f"{i:016x}", dataset=d, batch_norm=bn, algorithm=a, seed=seed, epochs_done=5,
                              seconds=360.0, device="cpu") for i, (d, bn, a, seed) in enumerate(rows)])
    table = stage_table(runs)
    assert list(zip(table["data"], table["stage"], table["rules"], table["runs"])) == [
        ("MNIST, no BN", "grid search", "paper's", 1), ("MNIST, no BN", "final runs", "paper's", 2),
        ("MNIST, no BN", "final runs", "control", 1), ("MNIST, BN", "grid search", "paper's", 1),
        ("MNIST, BN", "final runs", "paper's", 1), ("Fashion-MNIST, no BN", "final runs", "paper's", 1),
        ("Fashion-MNIST, BN", "final runs", "control", 1)]
    assert list(table["hours"]) == ["0.10", "0.20", "0.10", "0.10", "0.10", "0.10", "0.10"]
    assert set(table["median s/epoch"]) == {"72.0"}  # 360 s over 5 epochs


def test_grid_agreement_by_budget_says_how_far_an_incomplete_grid_is(tmp_path):
    from bnnlib.book.grid_search import grid_agreement_by_budget
    table = grid_agreement_by_budget("mnist", str(tmp_path))
    assert list(table["our runs"]) == ["5 epochs", "5 epochs", "100 epochs", "100 epochs"]
    assert set(table["our (init, lr) is the paper's"]) == {"grid not complete: 0 of 72 runs"}


def _grid_around_the_papers_choices(batch_norm):
    """A grid summary in which the paper's (init, lr) is our best run for every configuration,
    at 0.90 training accuracy, and the other five runs are at 0.80."""
    import pandas as pd
    from bnnlib.book.paper import paper_selection
    chosen = {(r.algorithm, r.weights, r.activation): (r.init, r.lr) for r in paper_selection(batch_norm).itertuples()}
    rows = [dict(algorithm=a, weights=w, activation=act, init=init, lr=lr, diverged=False,
                 best_train_accuracy=0.90 if chosen[a, w, act] == (init, lr) else 0.80)
            for (a, w, act) in chosen for init in (0.1, 0.001) for lr in (1e-4, 1e-5, 1e-6)]
    return pd.DataFrame(rows), chosen


def test_selection_differences_say_how_our_run_at_the_papers_choice_trained():
    from bnnlib.book.grid_search import selection_differences
    grid, chosen = _grid_around_the_papers_choices(False)
    assert selection_differences(grid, "mnist", False) == "Every one of our selections is the paper's."
    # DFA binary sign: another (init, lr) beats the paper's by 0.5 points; the paper's is 2nd of 6
    paper_init, paper_lr = chosen["DFA", "binary", "sign"]
    other = grid.index[(grid["algorithm"] == "DFA") & (grid["weights"] == "binary") & (grid["activation"] == "sign")
                       & ((grid["init"] != paper_init) | (grid["lr"] != paper_lr))][0]
    grid.loc[other, "best_train_accuracy"] = 0.905
    def lr(value):  # as Methods writes them: 1e-4, not 1e-04 or 0.0001
        return f"{value:.0e}".replace("e-0", "e-")
    ours = f"({grid.loc[other, 'init']:g}, {lr(grid.loc[other, 'lr'])})"
    # BP continuous tanh: the paper's run diverged, so another is ours
    bp_paper = grid.index[(grid["algorithm"] == "BP") & (grid["weights"] == "continuous") & (grid["activation"] == "tanh")
                          & (grid["init"] == chosen["BP", "continuous", "tanh"][0])
                          & (grid["lr"] == chosen["BP", "continuous", "tanh"][1])][0]
    grid.loc[bp_paper, "diverged"] = True
    text = selection_differences(grid, "mnist", False).replace("\u00a0", " ").replace("\u2060", "")
    assert text.startswith("Where the choices differ, our own run at the paper's (init, lr) — best training accuracy")
    assert (f"BP, continuous tanh: our run at the paper's ({chosen['BP', 'continuous', 'tanh'][0]:g}, "
            f"{lr(chosen['BP', 'continuous', 'tanh'][1])}) diverged; DFA, binary sign: 90.00 % at the paper's "
            f"({paper_init:g}, {lr(paper_lr)}) against 90.50 % at ours {ours}, 0.50 points less (2nd best of our 6 runs of it).") in text


@pytest.mark.parametrize("a, b, expected", [
    (0.925790, 0.924640, "0.12"),  # shown 92.58 and 92.46: their difference, not the unrounded 0.1150
    (0.923440, 0.922360, "0.10"),  # shown 92.34 and 92.24, unrounded 0.1080 (would print 0.11)
    (0.5, 0.5, "0.00"),
])
def test_points_apart_is_the_difference_of_the_numbers_shown(a, b, expected):
    from bnnlib.book.render import percent, points_apart
    assert f"{points_apart(a, b):.2f}" == expected
    assert f"{float(percent(a)) - float(percent(b)):.2f}" == expected
    assert points_apart(float("nan"), b) != points_apart(float("nan"), b)  # NaN


def test_selection_differences_state_the_gap_of_the_accuracies_they_show():
    from bnnlib.book.grid_search import selection_differences
    grid, chosen = _grid_around_the_papers_choices(True)
    paper_init, paper_lr = chosen["DFA", "binary", "sign"]
    config = (grid["algorithm"] == "DFA") & (grid["weights"] == "binary") & (grid["activation"] == "sign")
    theirs = config & (grid["init"] == paper_init) & (grid["lr"] == paper_lr)
    grid.loc[theirs, "best_train_accuracy"] = 0.924640
    grid.loc[grid.index[config & ~theirs][0], "best_train_accuracy"] = 0.925790
    text = selection_differences(grid, "mnist", True).replace("\u00a0", " ").replace("\u2060", "")
    assert "92.46 % at the paper's" in text and "against 92.58 % at ours" in text
    assert "0.12 points less" in text  # the unrounded difference, 0.1150 points, would say 0.11


def test_grid_figures_share_one_y_range():
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from bnnlib.book import grid_search

    def grid(values, diverged=()):
        return pd.DataFrame([dict(run_id=str(i), algorithm="BP", weights="binary", activation="sign", init=0.1,
                                  lr=1e-4, best_train_accuracy=v, diverged=i in diverged, collapsed=False)
                             for i, v in enumerate(values)])
    without_bn, with_bn = grid([0.10, 0.50, 0.0], diverged={2}), grid([0.90, 0.99])  # a diverged run is not drawn
    low, high = grid_search.shared_accuracy_range([without_bn, with_bn])
    assert (low, high) == pytest.approx((10 - 0.04 * 89, 99 + 0.04 * 89))
    for g in (without_bn, with_bn):
        assert grid_search.grid_robustness_boxplot(g, "grid", (low, high)).axes[0].get_ylim() == pytest.approx((low, high))


@pytest.mark.parametrize("dfa, bp, expected", [
    # hand-derived: two groups of 3 with within-group variance 1e-4 and means 0.02 apart:
    # F = 3·(0.01² + 0.01²) / 1e-4 = 6 with (1, 4) degrees of freedom, p = 0.0705
    ([0.91, 0.92, 0.93], [0.89, 0.90, 0.91], "F(1, 4) = 6.00, p = 0.07: DFA's advantage is not significant at the "
                                             "5 % level."),
    # means 0.40 apart: F = 3·(0.2² + 0.2²) / 1e-4 = 2 400, p = 1.0e-06
    ([0.50, 0.51, 0.52], [0.90, 0.91, 0.92], "F(1, 4) = 2,400, p = 1.0 × 10⁻⁶: BP's advantage is significant at the "
                                             "5 % level."),
    ([0.90], [0.40, 0.41], "Too few seeds, or no variation, for the test."),
])
def test_the_anova_reads_as_a_sentence(dfa, bp, expected):
    import pandas as pd
    from bnnlib.book.stats import anova_sentence, one_way_anova
    summary = pd.DataFrame([dict(algorithm=a, weights="binary", activation="sign", diverged=False, best_test_accuracy=v)
                            for a, values in (("DFA", dfa), ("BP", bp)) for v in values])
    text = anova_sentence(one_way_anova(summary)).replace("\u00a0", " ").replace("\u2060", "").replace("\u202f", ",")
    assert text.startswith(f"Mean best test accuracy over the seeds, binary sign: DFA {100 * sum(dfa) / len(dfa):.2f} % "
                           f"({len(dfa)} seeds), BP {100 * sum(bp) / len(bp):.2f} % ({len(bp)} seeds).")
    assert text.endswith(expected)


@pytest.mark.parametrize("epochs, marker", [(5, "o"), (100, "None")])
def test_learning_curves_mark_each_epoch_only_for_short_budgets(epochs, marker):
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from bnnlib.book.learning_curves import learning_curves_figure
    frame = pd.DataFrame([dict(algorithm=a, weights=w, activation="sign", seed=s, epoch=e, test_accuracy=0.5 + e / 1000)
                          for a in ("BP", "DFA") for w in ("continuous", "binary") for s in (2, 3)
                          for e in range(1, epochs + 1)])
    figure = learning_curves_figure(frame, "test")
    assert {line.get_marker() for ax in figure.axes for line in ax.lines if len(line.get_xdata()) == epochs} == {marker}


def test_bn_effect_sets_the_papers_difference_of_medians_beside_ours():
    """Paper (MNIST, section 1b): BP binary sign 59.41 % without BN, 97.20 % with: Δ = −37.79 points;
    DFA binary sign 96.06 − 97.35 = −1.29; DRTP continuous sign +0.04, beyond the ±0.02 of a
    difference of two medians each measured to ±0.01, so its direction is readable."""
    from bnnlib.book import bn_effect
    from bnnlib.protocol import get_budget
    without = _summary({("BP", "binary", "sign"): [0.60] * 10, ("DFA", "binary", "sign"): [0.97] * 10,
                        ("DRTP", "continuous", "sign"): [0.95] * 10})
    with_bn = _summary({("BP", "binary", "sign"): [0.96] * 5 + [0.98] * 5, ("DFA", "binary", "sign"): [0.96] * 10,
                        ("DRTP", "continuous", "sign"): [0.94] * 10})
    table = bn_effect.bn_effect_table(without, with_bn, "mnist")
    shown = bn_effect.bn_effect_display(table).set_index(["setting", "algorithm"])
    paper = "paper Δ of medians (points, ±0.02)"
    assert list(shown.columns) == ["Δ of medians (points)", paper, "Δ of means (points)", "95 % CI (points)", "p"]
    bp = shown.loc[("binary sign", "BP")]
    assert bp["Δ of medians (points)"] == "-37.00" and bp[paper] == "-37.79"
    assert shown.loc[("binary sign", "DFA"), paper] == "-1.29"
    assert shown.loc[("binary sign", "DFA"), "Δ of medians (points)"] == "+1.00"  # the other way
    assert shown.loc[("continuous sign", "DRTP"), paper] == "+0.04"
    assert bn_effect.bn_effect_paper_sentence(table, get_budget("cpu")) == (
        "After **5 epochs** (the paper trained for 100), removing BN moves our median the way it "
        "moves the paper's in **2 of 3** configurations where both directions are readable.")
    # a difference within the measurement's uncertainty is not read as a direction
    table.loc[table["algorithm"] == "DRTP", "paper_difference"] = 0.0001
    assert bn_effect.bn_effect_paper_sentence(table, get_budget("cpu")).endswith(
        "in **1 of 2** configurations where both directions are readable (1 of the 3 is left out: the paper's Δ is "
        "within its measurement uncertainty of 0).")
    # nor is ours where the table prints it +0.00 (here 0.004 points)
    drtp = table["algorithm"].eq("DRTP") & table["median_difference"].notna()
    table.loc[drtp, ["paper_difference", "median_difference"]] = [0.0004, 0.00004]
    assert bn_effect.bn_effect_paper_sentence(table, get_budget("cpu")).endswith(
        "in **1 of 2** configurations where both directions are readable (1 of the 3 is left out: our Δ of medians "
        "reads +0.00).")
    table.loc[table["algorithm"].eq("DFA") & table["median_difference"].notna(), "paper_difference"] = 0.0001
    assert bn_effect.bn_effect_paper_sentence(table, get_budget("cpu")).endswith(
        "in **1 of 1** configurations where both directions are readable (2 of the 3 are left out: in 1 the paper's Δ "
        "is within its measurement uncertainty of 0; in 1 our Δ of medians reads +0.00).")
    assert paper not in bn_effect.bn_effect_display(bn_effect.bn_effect_table(without, with_bn))


def _bn_finals(budgets):
    """final_runs_by_setting-like finals for MNIST and Fashion-MNIST: in every setting BP loses 10
    points without BN, DFA 1 and DRTP 0.5 (seeds spread by ±0.5 point)."""
    from bnnlib.book.labels import SETTINGS
    spread = [-0.005, 0.0, 0.005]
    finals = {}
    for dataset, budget in budgets.items():
        for batch_norm in (False, True):
            loss = {"BP": 0.10, "DFA": 0.01, "DRTP": 0.005}
            finals[dataset, batch_norm] = budget, None, None, _summary({
                (rule, *setting.split()): [0.9 - (0 if batch_norm else loss[rule]) + s for s in spread]
                for rule in loss for setting in SETTINGS})
    return finals


def test_the_batch_norm_page_states_c3_as_the_conclusions_decide_it():
    from bnnlib.book import bn_effect
    from bnnlib.book.claims import decide
    from bnnlib.protocol import get_budget
    datasets = ["mnist", "fashion-mnist"]
    finals = _bn_finals({d: get_budget("paper") for d in datasets})
    glue = decide({key: summary for key, (_, _, _, summary) in finals.items()})["glue"]
    text = bn_effect.c3_verdict_sentence(finals, datasets)
    assert glue["c3_verdict"] == "supported"  # BP's |Δ| above both alternatives' in all 8 pairs
    assert text.startswith("**Claim C3 — DFA and DRTP are more tolerant than BP to the presence or absence of BN: "
                           "supported** after **100 epochs** (as in the paper)")
    assert (f"Over the 8 dataset × setting pairs, the median size |Δ| of the effect of removing BN (the dots below, "
            f"without their sign) is BP 10.00, DFA 1.00 and DRTP 0.50 points") in text
    assert f"Holm-adjusted p: {glue['c3_p']}." in text
    # datasets at different budgets: the test pairs them at one, so no verdict here
    mixed = _bn_finals({"mnist": get_budget("paper"), "fashion-mnist": get_budget("cpu")})
    text = bn_effect.c3_verdict_sentence(mixed, datasets)
    assert "supported" not in text and "(MNIST after 100 epochs, Fashion-MNIST after 5 epochs)" in text


def test_bn_effect_figure_shows_the_alternatives_on_a_panel_of_their_own():
    import matplotlib
    matplotlib.use("Agg")
    from bnnlib.book import bn_effect
    from bnnlib.protocol import get_budget
    finals = _bn_finals({"mnist": get_budget("paper")})
    table = bn_effect.bn_effect_table(finals["mnist", False][3], finals["mnist", True][3], "mnist")
    top, bottom = bn_effect.bn_effect_figure(table, "MNIST").axes
    assert top.get_ylim()[0] < -10  # BP's −10 points on the top panel
    low, high = bottom.get_ylim()
    assert -10 < low < -1 and 0 <= high < 5  # DFA's −1 and DRTP's −0.5, with their intervals, and 0
    alone = bn_effect.bn_effect_figure(table[table["algorithm"] == "BP"], "BP only")
    assert len(alone.axes) == 1  # nothing to zoom on without an alternative
    # readable on a phone: its text was ~4 px there, beside a legend that took a third of the width
    for fig in (bn_effect.bn_effect_figure(table, "MNIST (100 epochs): effect of removing BN"), alone):
        smallest = smallest_text_px(fig, PHONE_COLUMN_PX)
        assert smallest[0] >= 8, f"{smallest[1]!r} is {smallest[0]:.1f} px on a 390 px phone"


def test_reproducing_lists_the_paper_budgets_runs_beside_the_pages_own(tmp_path):
    from bnnlib.book.reproducing import runs_by_budget
    from bnnlib.protocol import get_budget, grid_configs
    from bnnlib.store import ResultsStore
    cpu, paper = get_budget("cpu"), get_budget("paper")
    cpu_store, paper_store = ResultsStore(tmp_path / "cpu"), ResultsStore(tmp_path / "paper")
    run = grid_configs("mnist", False, cpu)[0]
    cpu_store.update_runs([dict(run_id=run.run_id, **run.identity(), status="complete", epochs_done=5, seconds=5.0)])
    assert list(runs_by_budget(cpu, cpu_store, str(tmp_path))) == ["cpu"]  # no paper runs yet: left out
    run = grid_configs("mnist", False, paper)[0]
    paper_store.update_runs([dict(run_id=run.run_id, **run.identity(), status="running", epochs_done=7, seconds=7.0)])
    shown = runs_by_budget(cpu, cpu_store, str(tmp_path))
    assert list(shown) == ["cpu", "paper"] and shown["paper"]["epochs_done"].tolist() == [7]
    assert list(runs_by_budget(paper, paper_store, str(tmp_path))) == ["paper"]  # not twice


def _curves(accuracy_by_run):
    """Per-epoch records: {(algorithm, seed): {epoch: test accuracy}}, binary weights + sign."""
    import pandas as pd
    return pd.DataFrame([dict(run_id=f"{algorithm}{seed}", algorithm=algorithm, weights="binary", activation="sign",
                              seed=seed, epoch=epoch, test_accuracy=value)
                         for (algorithm, seed), values in accuracy_by_run.items() for epoch, value in values.items()])


def _twenty_epochs():
    from bnnlib.protocol import Budget
    return Budget("tiny", 20, None, None, (2, 3, 4), "twenty epochs")


def _late_rise_curves(scale: float = 1.0):
    """20 epochs of BP (seeds 2-4 rising over epochs 18 → 20, seed 5 stopped at 15) and DFA (not
    rising); ``scale`` multiplies every accuracy."""
    def run(at_18, at_20, floor, best_at_10=None):
        values = {e: floor for e in range(1, 21)}
        values.update({18: at_18, 20: at_20})
        if best_at_10 is not None:
            values[10] = best_at_10
        return {e: scale * v for e, v in values.items()}
    return _curves({("BP", 2): run(0.50, 0.53, 0.40, best_at_10=0.60), ("BP", 3): run(0.52, 0.56, 0.40),
                    ("BP", 4): run(0.54, 0.575, 0.40), ("BP", 5): {e: scale * 0.3 for e in range(1, 16)},
                    ("DFA", 2): run(0.90, 0.89, 0.80), ("DFA", 3): run(0.91, 0.91, 0.80),
                    ("DFA", 4): run(0.92, 0.90, 0.80)})


def test_learning_curves_finding_counts_the_rising_configurations_and_reads_the_papers_figure():
    """Two settings: MNIST without BN where BP rises by +3.50 points (as in the test below), and
    Fashion-MNIST without BN — the paper's figure's setting, whose last point is epoch 100 — where
    nothing rises (DFA's changes −1, 0, −2 scaled by 0.5). At 20 epochs the paper's last point is
    not reached, so the figure is not read; with it moved to epoch 20 it is: BP ends at the mean of
    its seeds' epoch 20 (0.5 × (53 + 56 + 57.5) / 3 = 27.75 %; seed 5 stopped at 15), DFA at
    0.5 × 90 = 45.0 %."""
    from bnnlib.book import learning_curves
    from bnnlib.book.paper import paper_learning_curve
    budget = _twenty_epochs()
    curves = {("mnist", False): _late_rise_curves(), ("fashion-mnist", False): _late_rise_curves(0.5)}
    flat = curves["fashion-mnist", False].copy()
    flat.loc[flat["algorithm"] == "BP", "test_accuracy"] = 0.2  # BP flat on Fashion-MNIST
    curves["fashion-mnist", False] = flat
    late = {key: learning_curves.late_gains(frame, budget) for key, frame in curves.items()}
    budgets = dict.fromkeys(curves, budget)
    paper = paper_learning_curve()
    text = learning_curves.finding(curves, late, budgets, paper)
    assert text == ("**1 of 4 configurations are still rising when the 20 epochs end** (mean gain over epochs "
                    "18 → 20): BP binary sign on MNIST without BN (+3.50 points); none in Fashion-MNIST without BN.")
    at_twenty = dict(paper, bp_binary_sign=[(1, 0.14), (20, 0.65)])
    curves["fashion-mnist", False] = _late_rise_curves(0.5)
    assert learning_curves.finding(curves, late, budgets, at_twenty).endswith(
        "Beside the paper's figure (Fashion-MNIST without BN, sign activations), BP with binary weights ends at "
        "27.8 % (the paper's: about 65 %) and every other configuration at 45.0 % (the paper's plateau: "
        "80–88 %).")
    assert learning_curves.finding(curves, {}, budgets, paper).startswith("No complete final runs")


def test_late_gains_test_the_last_tenth_of_the_budget_seed_by_seed():
    """20 epochs: the last tenth is epoch 18 → 20. BP's seeds change by +3, +4, +3.5 points (mean
    3.5, sd 0.5: t = 12.1 with 2 degrees of freedom, one-sided p = 0.0034, Holm × 2 = 0.0067:
    rising); DFA's by −1, 0, −2 (not). Seed 5 of BP stopped at epoch 15 and is left out. The
    figure of merit: BP's seed 2 had its best (60 %) at epoch 10, so it gains 0; seeds 3 and 4
    gain 4 and 3.5 points: mean 2.5."""
    from bnnlib.book import learning_curves
    budget, curves = _twenty_epochs(), _late_rise_curves()
    gains = learning_curves.late_gains(curves, budget).set_index("algorithm")
    assert gains.attrs == {"first": 18, "last": 20}
    assert gains.loc["BP", "seeds"] == 3 and gains.loc["BP", "change"] == pytest.approx(0.035)
    assert gains.loc["BP", "p"] == pytest.approx(0.00337, abs=2e-5)
    assert gains.loc["BP", "p_holm"] == pytest.approx(0.00674, abs=4e-5)
    assert gains.loc["BP", "best_gain"] == pytest.approx(0.025) and gains.loc["DFA", "best_gain"] == 0
    assert bool(gains.loc["BP", "rising"]) and not gains.loc["DFA", "rising"]
    table = {("mnist", False): learning_curves.late_gains(curves, budget)}
    shown = learning_curves.late_gains_display(table, {("mnist", False): budget})
    assert shown.columns.tolist() == ["setting", "algorithm", "MNIST, no BN (ours, epoch 18 → 20)"]
    assert shown.iloc[:, 2].tolist() == ["+3.50 *", "-1.00"]
    assert learning_curves.late_gains_sentence(table, {("mnist", False): budget}).endswith(
        "- MNIST without BN (20 epochs: epoch 18 → 20): **1 of 2** configurations still rising — BP binary sign "
        "(+3.50 points). Over those epochs the figure of merit rose by at most 2.50 points (BP, binary sign).")


def test_grid_comparison_measures_the_gap_to_the_papers_logs_only_where_the_choice_is_the_same():
    from bnnlib.book.paper import paper_grid
    from bnnlib.book.grid_search import grid_comparison, logged_accuracy_gap_sentence
    from bnnlib.protocol import get_budget
    paper = paper_grid("mnist", False).reset_index(drop=True)
    # our runs 0.10 points above the paper's logs in training and 0.30 below in test, but row 3 at
    # 0.40 above in training and row 5 at 0.60 below in test; row 0's (init, lr) is not the paper's
    # and its accuracies are far off: not counted
    selection = paper[["algorithm", "weights", "activation", "init", "lr"]].assign(
        best_train_accuracy=paper["train_accuracy"] + 0.001, best_test_accuracy=paper["test_accuracy"] - 0.003)
    selection.loc[3, "best_train_accuracy"] = paper.loc[3, "train_accuracy"] + 0.004
    selection.loc[5, "best_test_accuracy"] = paper.loc[5, "test_accuracy"] - 0.006
    selection.loc[0, ["lr", "best_train_accuracy", "best_test_accuracy"]] = [selection.loc[0, "lr"] / 10, 0.5, 0.5]
    comparison = grid_comparison(selection, "mnist", False)
    assert (comparison.attrs["agree"], comparison.attrs["compared"]) == (len(paper) - 1, len(paper))
    assert comparison.attrs["largest train gap"] == pytest.approx(0.40)
    assert comparison.attrs["largest test gap"] == pytest.approx(0.60)
    named = {i: f"{paper.loc[i, 'algorithm']}, {paper.loc[i, 'weights']} {paper.loc[i, 'activation']}" for i in (3, 5)}
    assert logged_accuracy_gap_sentence(comparison, get_budget("paper")) == (
        f"Where our choice is the paper's ({len(paper) - 1} configurations), our accuracies and those the paper "
        f"logged for the same run are at most **0.40 points** apart in training accuracy ({named[3]}) and "
        f"**0.60 points** in test accuracy ({named[5]}).")
    assert logged_accuracy_gap_sentence(comparison, get_budget("cpu")).endswith(
        "— ours after 5 epochs, the paper's after 100.")
    assert logged_accuracy_gap_sentence(grid_comparison(selection.iloc[:1], "mnist", False), get_budget("paper")) == ""


@pytest.mark.parametrize("benchmark_processor, here, expected", [
    ("AMD EPYC (AVX2)", "AMD EPYC (AVX2)", "the kind of processor that executed this page"),
    ("AMD EPYC (AVX2)", "AMD EPYC (AVX512)",
     "not the AMD EPYC (AVX512) that executed this page, where the timings and the kernel chosen may differ"),
])
def test_a_committed_benchmark_says_whether_it_ran_on_the_pages_processor(monkeypatch, benchmark_processor,
                                                                          here, expected):
    from bnnlib import runner
    from bnnlib.book import deployment
    monkeypatch.setattr(runner, "processor", lambda device: here)
    assert deployment.benchmark_processor_phrase(benchmark_processor) == expected


def test_the_deployment_page_reads_its_processors_benchmark_else_the_avx512_one(tmp_path, monkeypatch):
    from bnnlib.book import deployment
    monkeypatch.setattr(deployment, "BENCHMARKS", tmp_path)
    report = json.loads((deployment.PROJECT_ROOT / "benchmarks" / "results" / "inference_speed_avx512.json").read_text())
    (tmp_path / "inference_speed_avx512.json").write_text(json.dumps(report))
    assert deployment.benchmark_file("avx2") == tmp_path / "inference_speed_avx512.json"  # none for avx2: the fallback
    (tmp_path / "inference_speed_avx2.json").write_text(json.dumps({**report, "bits_paths": ["avx2", "generic"]}))
    assert deployment.benchmark_file("avx2") == tmp_path / "inference_speed_avx2.json"
    speed = deployment.read_benchmark(str(tmp_path / "inference_speed_avx2.json"))
    # the figure's first bar and the page's sentences are the fastest path the benchmark's processor ran
    assert list(deployment.speed_rows(speed))[0] == "packed engine, bits kernel (avx2)\n(predict's default)"
    glue = deployment.benchmark_glue(speed)
    bits = report["rows"]["packed engine, bits kernel (avx2)"]
    assert glue["deploy_bits_path"] == "avx2" and glue["deploy_bits_us"] == f"{1e6 * bits['latency_s']:.1f}"
    plain = report["rows"]["float32, every layer"]
    assert glue["deploy_speed_1"] == deployment.times_faster(plain["latency_s"] / bits["latency_s"])


def test_the_best_budget_is_chosen_by_one_rule_whatever_a_page_needs(tmp_path):
    """records.choose_budget is the rule: an explicit budget is kept; best is the first of paper,
    cpu whose runs the page finds complete, else cpu; the conclusions' budget of C3's pairs is the
    first recorded in that order, then the page's own."""
    from bnnlib.book import records

    asked = []

    def complete(budget, store):
        asked.append(budget.name)
        return budget.name == "cpu"
    assert records.choose_budget("smoke", tmp_path, complete)[0].name == "smoke" and asked == []
    budget, store = records.choose_budget("best", tmp_path, complete)
    assert (budget.name, store.directory, asked) == ("cpu", tmp_path / "cpu", ["paper", "cpu"])
    assert records.choose_budget("best", tmp_path, lambda budget, store: False)[0].name == "cpu"
    assert records.first_recorded({"cpu": 1, "paper": 2}, "smoke") == "paper"
    assert records.first_recorded({"cpu": 1, "paper": None}, "smoke") == "cpu"
    assert records.first_recorded({"cpu": None, "paper": None, "smoke": 3}, "smoke") == "smoke"
    assert records.first_recorded({"cpu": None, "paper": None}, "cpu") is None


def test_the_readme_quotes_the_conclusions_verdicts_as_computed():
    """The README's front-page verdicts are the Conclusions page's glued values, not typed ones:
    a re-executed page with other numbers fails here until the README says the same."""
    import json
    import re
    readme = " ".join((ROOT / "README.md").read_text().split())
    glued = {}
    for cell in json.loads((ROOT / "chapters" / "07_conclusions.ipynb").read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                glued[name] = glued_value(output["data"]["application/papermill.record/text/plain"])
    assert glued["pairs_budget"] == "100 epochs"
    for claim in ("c1", "c2", "c3"):
        assert f"{claim.upper()} — " in readme and f": {glued[f'{claim}_verdict']}" in readme
    assert f"({glued['c1_tests']} one-sided tests" in readme
    dfa = re.findall(r"DFA − BP = (\S+) points on (\S+) \(", glued["c2_binary_sign"])
    assert len(dfa) == 2 and all(f"{value} points on {dataset}" in readme for value, dataset in dfa)
    dfa_p, drtp_p = glued["c3_p"].split(", ")
    assert f"Holm-adjusted p: {dfa_p}, {drtp_p}" in readme
    assert f"BP {glued['c3_bp']}, DFA {glued['c3_dfa']}, DRTP {glued['c3_drtp']}" in readme


def test_the_readme_quotes_the_agreement_with_the_paper_as_computed():
    """The README's paragraph on the paper's numbers quotes the Results index's agreement and
    Methods' opening, as executed."""
    import json
    import re
    readme = " ".join((ROOT / "README.md").read_text().split())

    def markdown(page):
        return [" ".join("".join(o["data"]["text/markdown"]).split())
                for cell in json.loads((ROOT / "chapters" / f"{page}.ipynb").read_text())["cells"]
                for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]
    [agreement] = [t for t in markdown("04_results") if "inter-quartile range overlaps ours" in t]
    overlap = re.search(r"overlaps ours for \*\*(\d+ of \d+)\*\* configurations", agreement).group(1)
    assert f"the paper's inter-quartile range overlaps ours for {overlap} configurations" in readme
    [opening] = [t for t in markdown("02_methods") if t.startswith("**In short.**")]
    above = re.search(r"with BN, \*\*(\d+ of \d+)\*\* of our medians lie above the paper's[^(]*\(mean "
                      r"([+-]\d\.\d\d) points", opening)
    effect = re.search(r"best test accuracy by \*\*([+-]\d\.\d\d)\*\* points on average", opening).group(1)
    verdict = "does not account for" if "**does not account for**" in opening else "accounts for"
    assert (f"with BN, {above.group(1)} of our medians lie above the paper's (mean {above.group(2)} points)"
            in readme)
    assert f"moves a run's best test accuracy by {effect} points on average and {verdict} it" in readme


def test_the_differences_sentence_counts_each_cause_and_says_none_for_zero():
    """Two configurations apart from the paper: one the seeds explain (|z| ≤ 2), one trained at
    another (init, lr) than the paper's, none left; the first still gained 0.30 points in its last
    10 epochs, more than its 0.20-point gap."""
    import pandas as pd
    from bnnlib.book import differences
    table = pd.DataFrame({"Δ (points)": ["+0.20", "-0.50"], "seeds explain it": ["yes", "no"],
                          "gain, last 10 epochs (points)": ["0.30", "0.01"], "_same": [True, False]})
    text = differences.explained_sentence(table, "100 epochs")
    assert text.startswith("After 100 epochs, the inter-quartile ranges of **2** configurations do not overlap")
    assert "overlap the paper's. The seeds could explain **1** of them: the two medians lie within 2 standard" in text
    assert "The hyperparameters could explain the rest: our grid search" in text
    assert text.endswith("so the final runs train another configuration. That leaves **none** that neither explains.")
    assert differences.rising_sentence(table) == (" Still rising? In their last 10 epochs our runs' best accuracy "
                                                  "rose by a median of at most 0.30 points in these configurations; "
                                                  "in 1 of them by as much as the gap.")
    table["gain, last 10 epochs (points)"] = ["0.10", "–"]
    assert differences.rising_sentence(table).endswith("at most 0.10 points in these configurations; in none of them "
                                                       "by as much as the gap.")
    table["gain, last 10 epochs (points)"] = "–"
    assert differences.rising_sentence(table) == ""


@pytest.mark.parametrize("seeds, same, says", [
    # one configuration the seeds do not explain but another (init, lr) does: no "none … more" (the MNIST page's)
    (["no"], [False], ["The seeds do not explain it: the two medians lie further apart than 2 standard errors",
                       "The hyperparameters could explain it: our grid search", "That leaves **none** that"]),
    (["no"], [True], ["The seeds do not explain it", "The hyperparameters do not explain it: it trains the paper's "
                      "(init, lr). That leaves **1** that neither explains."]),
    (["yes"], [True], ["The seeds could explain it: the two medians lie within 2 standard errors"]),
    (["no", "no"], [False, False], ["The seeds do not explain them", "could explain all of them: our grid search"]),
    (["yes", "yes"], [True, True], ["The seeds could explain all of them: "]),
    (["yes", "no", "no"], [True, False, True], ["The seeds could explain **1** of them",
                                                "The hyperparameters could explain **1** of the rest", "leaves **1**"]),
    (["yes", "no"], [True, True], ["The hyperparameters do not explain the rest: they train the paper's"]),
])
def test_each_cause_in_the_differences_sentence_reads_as_its_count_says(seeds, same, says):
    import pandas as pd
    from bnnlib.book import differences
    text = differences.explained_sentence(pd.DataFrame({"seeds explain it": seeds, "_same": same}), "100 epochs")
    assert all(part in text for part in says), text
    assert "more" not in text.split("overlap the paper's.")[1]  # no cause counted "more" after another's count
    if "yes" not in seeds:
        assert "could close the gap" not in text and "within 2 standard errors" not in text


def test_the_budgets_table_counts_the_arithmetic_versions_of_each_budgets_records(tmp_path):
    """Records without a version are version 1; one version is named alone, several with their counts."""
    from bnnlib.book import reproducing
    import pandas as pd
    assert reproducing.arithmetic_versions(pd.DataFrame({"arithmetic": [3.0, 3.0]})) == "3"
    assert reproducing.arithmetic_versions(pd.DataFrame({"arithmetic": [float("nan"), 2.0, 3.0, 3.0]})) == \
        "1: 1 run, 2: 1, 3: 2"
    assert reproducing.arithmetic_versions(pd.DataFrame({"run_id": ["a"]})) == "1"  # written before versions
    table = reproducing.budgets_table(str(tmp_path)).set_index("budget")
    assert set(table["arithmetic"]) == {"no runs recorded"} and list(tmp_path.iterdir()) == []
def test_the_results_pages_say_how_far_the_shallow_controls_runs_are(tmp_path):
    """Until SHALLOW's final runs are all recorded its rows stay out of a results page, which says
    whether its grid search is recorded and how many of its finals are."""
    import pandas as pd
    from bnnlib.book.shallow import control_sentence
    from bnnlib.protocol import final_configs, get_budget, grid_configs, summarise
    from bnnlib.store import ResultsStore
    from bnnlib.sweep import select_hyperparameters

    budget, store = get_budget("smoke"), ResultsStore(tmp_path / "smoke")
    paper_rules = pd.DataFrame({"algorithm": ["BP", "DFA", "DRTP"]})

    def record(configs, into=store):
        into.update_runs([dict(run_id=c.run_id, **c.identity(), status="complete", epochs_done=budget.epochs)
                          for c in configs])
        into.add_epochs([dict(run_id=c.run_id, **c.identity(), epoch=e, loss=0.1, train_accuracy=0.5 + 0.001 * i,
                              train_precision=0.5, train_f1=0.5, test_accuracy=0.5, test_precision=0.5, test_f1=0.5)
                         for i, c in enumerate(configs) for e in range(1, budget.epochs + 1)])

    assert "It is not recorded with **" in control_sentence(paper_rules, "fashion-mnist", True, budget, store)
    grid = grid_configs("mnist", True, budget, algorithms=("SHALLOW",))
    record(grid)
    finals = final_configs(select_hyperparameters(summarise(store, grid, budget)), "fashion-mnist", True, budget)
    record(finals[:3])
    text = control_sentence(paper_rules, "fashion-mnist", True, budget, store)
    assert f"Its grid search is recorded with **{budget.epochs} epoch" in text
    assert f"its final runs not yet: **3 of {len(finals)}** so far" in text
    assert "fully binary ones are recorded already" not in text
    # its fully binary finals, once all recorded as probed runs (the same runs), are said to be: Conclusions reads them
    from bnnlib.protocol import _is_probed_setting, probed_store
    binary = [c for c in finals if _is_probed_setting(c)]
    record(binary, into=probed_store(store))
    text = control_sentence(paper_rules, "fashion-mnist", True, budget, store)
    assert (f"Its {len(binary)} fully binary ones are recorded already, as the mechanism chapter's probed runs (mean "
            f"best test accuracy 50.0 %), which the Conclusions and that chapter use") in text
    shown = control_sentence(pd.DataFrame({"algorithm": ["BP", "SHALLOW"]}), "fashion-mnist", True, budget, store)
    assert shown.endswith("Its grid search and final runs follow the same protocol; the paper has no numbers for it.")


@pytest.mark.parametrize("differences, p, text", [
    ([1] * 23 + [0], 2 / 2 ** 23, "2.4\u00a0×\u00a010⁻⁷"),          # a zero is dropped: 23 of 23 one way
    ([1] * 23 + [-1], 2 * 25 / 2 ** 24, "3.0\u00a0×\u00a010⁻⁶"),     # P(≤ 1 of 24 either way) = 2 · 25 / 2²⁴
    ([1] * 12 + [-1] * 12, 1.0, "1"),
    ([0.2, 0.1, 0.3, -0.1], 0.625, "0.62"),                        # 2 · (1 + 4) / 2⁴
])
def test_the_sign_test_by_hand(differences, p, text):
    from bnnlib.book.stats import p_text, sign_test
    assert sign_test(differences) == pytest.approx(p)
    assert p_text(sign_test(differences)) == text
