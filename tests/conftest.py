import ast
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: where Debian's dataset-fashion-mnist installs its files
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def mnist_mirror():
    """The real MNIST files of ../shared/data, in torchvision's layout (read-only)."""
    mirror = Path(os.environ.get("BNNLIB_TEST_MNIST_MIRROR", SHARED_DATA))
    if not (mirror / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real MNIST not found under {mirror} (set BNNLIB_TEST_MNIST_MIRROR)")
    return mirror


@pytest.fixture(scope="session")
def mnist_root(mnist_mirror, tmp_path_factory):
    """A writable data root holding real MNIST, loaded once through the mirror path."""
    from bnnlib.data import load_dataset
    root = tmp_path_factory.mktemp("data-root")
    load_dataset("mnist", root=root, mirror=mnist_mirror, download=False)
    return root


@pytest.fixture(scope="session")
def mnist(mnist_root):
    from bnnlib.data import load_dataset
    return load_dataset("mnist", root=mnist_root, download=False)


@pytest.fixture(scope="session")
def test_pixels(mnist_root):
    """Full test sets as (uint8 pixels, labels), per dataset (Fashion-MNIST where Debian's
    dataset-fashion-mnist is installed): what the inference engines are checked on."""
    from bnnlib import deploy
    from bnnlib.data import load_dataset
    sets = {}
    for name in ("mnist", "fashion-mnist"):
        if name == "fashion-mnist" and not FASHION_DEBIAN.exists():
            continue
        data = load_dataset(name, root=mnist_root, download=False)
        sets[name] = (deploy.pixels(data.x_test), data.labels_test.numpy())
    return sets


def glued_value(raw: str) -> str:
    """A value a page glued, as the page shows it: papermill records a string as its repr, which
    escapes what Python deems unprintable ("1.3\\xa0×\\xa010⁻¹⁸" for stats.p_text's no-break spaces)."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw.strip("'\"")
    return value if isinstance(value, str) else raw.strip("'\"")
