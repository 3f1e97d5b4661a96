"""The standalone C engine (`python -m bnnlib export-c`, bnnlib/cexport.py): one dependency-free
C99 file per packed model, compiled with the system's cc beside a driver of the test's own
(tests/bnn_driver.c), classifies the full test sets as the packed engine does."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnnlib import cexport, deploy

ROOT = Path(__file__).resolve().parents[1]
PACKED = ROOT / "results" / "paper" / "packed"
DRIVER = ROOT / "tests" / "bnn_driver.c"
CC = shutil.which("cc")

needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on PATH")

# (dataset, BN, rule): committed models the test compiles and runs on the full test set
MODELS = [("mnist", True, "DFA"), ("fashion-mnist", False, "BP")]


#: the two forms of block 1: ±1 bytes expanded on the first call (default), and the bits only
FORMS = [(), ("-DBNN_COMPACT",)]


def _compile(c_file: Path, folder: Path, input_size: int = 784, defines: tuple = ()) -> Path:
    binary = folder / (c_file.stem + "".join(defines) + ".bin")
    compiled = subprocess.run([CC, "-O2", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", *defines,
                               f"-DBNN_DRIVER_INPUT={input_size}", str(c_file), str(DRIVER), "-lm",
                               "-o", str(binary)], capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stderr
    return binary


def _run(binary: Path, pixels: np.ndarray) -> np.ndarray:
    ran = subprocess.run([str(binary)], input=np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(),
                         capture_output=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    return np.frombuffer(ran.stdout, dtype=np.uint8).astype(np.int64)


def _model(dataset, batch_norm, algorithm) -> Path:
    table = pd.read_csv(ROOT / "results" / "paper" / "packed.csv")
    rows = table[(table.dataset == dataset) & (table.batch_norm == batch_norm) & (table.algorithm == algorithm)]
    return PACKED / f"{rows.sort_values('run_id').run_id.iloc[0]}.bnn"


@needs_cc
@pytest.mark.parametrize("dataset,batch_norm,algorithm", MODELS)
def test_the_c_engine_predicts_as_the_packed_engine_on_the_full_test_set(tmp_path, test_pixels, dataset,
                                                                         batch_norm, algorithm):
    if dataset not in test_pixels:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    model = _model(dataset, batch_norm, algorithm)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    written = subprocess.run([sys.executable, "-m", "bnnlib", "export-c", str(model), "-o", str(tmp_path / "model.c")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert written.returncode == 0, written.stderr
    assert "bytes of C99" in written.stdout
    text = (tmp_path / "model.c").read_text()
    assert "int bnn_predict(const unsigned char pixels[784])" in text and not re.search(r"\bmain\s*\(", text)
    assert re.findall(r"#include <(\w+)\.h>", text) == ["math", "stdint", "string"]  # nothing else
    pixels, _ = test_pixels[dataset]
    expected = deploy.PackedNetwork.load(model).predict(pixels, engine="gemm")
    for defines in FORMS:
        assert np.array_equal(_run(_compile(tmp_path / "model.c", tmp_path, defines=defines), pixels), expected), defines


# (sizes, seed, output ×): odd sizes exercise padding in every word; × 50 saturates tanh (ties)
NETWORKS = [((40, 30, 20, 10), 1, 1.0), ((13, 65, 129, 7, 3), 3, 1.0), ((100, 513, 64, 10), 4, 1.0),
            ((784, 70, 50, 10), 5, 50.0)]


@needs_cc
@pytest.mark.parametrize("defines", FORMS)
@pytest.mark.parametrize("sizes,seed,scale", NETWORKS)
def test_the_c_engine_handles_any_sizes_and_saturated_outputs(tmp_path, sizes, seed, scale, defines):
    from test_binary import _random_network
    network, images = _random_network(sizes, seed, scale)
    (tmp_path / "net.c").write_text(cexport.source(network))
    got = _run(_compile(tmp_path / "net.c", tmp_path, sizes[0], defines), images)
    assert np.array_equal(got, network.predict(images, engine="gemm"))


# (mode, T, a, fires): the packed file's threshold rule (deploy.PackedNetwork) row by row
THRESHOLDS = [(deploy.ABOVE, 5, 5, True), (deploy.ABOVE, 5, 4, False), (deploy.ABOVE, -3, -2, True),
              (deploy.BELOW, 5, 5, True), (deploy.BELOW, 5, 6, False), (deploy.BELOW, -3, -4, True),
              (deploy.PLUS, 0, -99999, True), (deploy.PLUS, 7, 99999, True),
              (deploy.MINUS, 0, 0, False), (deploy.MINUS, 7, -99999, False)]


@pytest.mark.parametrize("mode,limit,a,fires", THRESHOLDS)
def test_the_c_files_thresholds_fire_as_the_packed_files(mode, limit, a, fires):
    direction, bound = cexport._thresholds(np.array([mode], dtype=np.int8), np.array([limit], dtype=np.int32), 4)
    assert bool(int(direction[0]) * a >= int(bound[0])) == fires
    assert list(direction[1:]) == [0, 0, 0] and list(bound[1:]) == [1, 1, 1]  # padding units never fire


def test_export_c_refuses_a_missing_model_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ran = subprocess.run([sys.executable, "-m", "bnnlib", "export-c", str(tmp_path / "none.bnn"), "-o",
                          str(tmp_path / "x.c")], capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 2
    assert ran.stderr.strip() == f"error: model {tmp_path / 'none.bnn'} does not exist; accepted: a packed network file (.bnn)"


@needs_cc
@pytest.mark.slow
def test_every_committed_packed_model_compiles_and_predicts_as_the_packed_engine(tmp_path, test_pixels):
    table = pd.read_csv(ROOT / "results" / "paper" / "packed.csv")
    for run_id, dataset in zip(table.run_id, table.dataset):
        if dataset not in test_pixels:
            continue
        model = PACKED / f"{run_id}.bnn"
        cexport.export_c(model, tmp_path / f"{run_id}.c")
        pixels, _ = test_pixels[dataset]
        got = _run(_compile(tmp_path / f"{run_id}.c", tmp_path), pixels)
        assert np.array_equal(got, deploy.PackedNetwork.load(model).predict(pixels)), run_id
