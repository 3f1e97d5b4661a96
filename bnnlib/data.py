"""Datasets for the protocol: MNIST, Fashion-MNIST and CIFAR-10 through torchvision.

``load_dataset(name)`` returns a :class:`Dataset` of tensors ready for the protocol —
pixels / 127.5 − 1, flattened; integer labels; ±1 targets on demand.

Where the files come from, in this order:

1. the data root (``root=``, else ``$BNNLIB_DATA_ROOT``, else the project's ``data/``), in
   torchvision's layout, if they are already there and their checksums are right;
2. an offline mirror (``mirror=``, else ``$BNNLIB_DATA_MIRROR``) in torchvision's layout —
   ``MNIST/raw/*.gz``, ``FashionMNIST/raw/*.gz``, ``cifar-10-python.tar.gz`` — copied into
   the root after torchvision's own md5 checksums are verified;
3. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package
   (``/usr/share/datasets/fashion-mnist/``), decompressed into the root after the sha256
   of each decompressed file is checked;
4. torchvision's normal download (``download=True``, the default), for users with internet.

Missing or corrupt data raises :class:`DatasetError`, naming the file, what was expected
and the ways to provide it. There is never a silent substitute.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch
import torchvision
from torchvision.datasets.utils import check_integrity

from .paths import DATA_DIR

PROJECT_DATA_ROOT = DATA_DIR
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
ROOT_VARIABLE = "BNNLIB_DATA_ROOT"
MIRROR_VARIABLE = "BNNLIB_DATA_MIRROR"

# sha256 of the decompressed IDX files (../shared/data/SOURCES.md); Debian's .gz files lost
# their header names, so their md5s differ from torchvision's, but the contents are these.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# torchvision's own CIFAR-10 checksums; a test swaps them for those of a tiny archive it writes
CIFAR10_CHECKSUMS = {
    "tgz": torchvision.datasets.CIFAR10.tgz_md5,
    "train_list": [list(entry) for entry in torchvision.datasets.CIFAR10.train_list],
    "test_list": [list(entry) for entry in torchvision.datasets.CIFAR10.test_list],
    "meta": torchvision.datasets.CIFAR10.meta["md5"],
}

DATASETS = ("mnist", "fashion-mnist", "cifar10")

# sha256 of the decoded arrays (``array_digest``) of the official files: every load is checked
# against it, so a flipped byte in an extracted file or in the decode cache can never become
# training data. CIFAR-10 could not be had where this was written: its cache is checked against
# the digest stored with it when it was decoded from the md5-verified archive.
DECODED_SHA256 = {
    "mnist": "2d5341af199d400a801b1e75c09703edea7a25171590e46f2af841dc4baa68e0",
    "fashion-mnist": "c3650a11598fa3608dabfce7affb882c5b3dd38245b338c50a8d021572a9baf4",
}


class DatasetError(RuntimeError):
    """A dataset is missing or corrupt; the message says what to do."""


@dataclass
class Dataset:
    """A dataset as the protocol uses it (all tensors on the CPU)."""

    name: str
    x_train: torch.Tensor  # (N, features) float32 in [−1, 1]
    labels_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor
    labels_test: torch.Tensor
    n_classes: int = 10
    #: sha256 of the decoded images and labels (all splits, before scaling); runs record it
    digest: str = ""
    #: every x is p/127.5 − 1 for an integer pixel p (lets binary first layers sum exactly)
    pixel_inputs: bool = False

    @property
    def input_size(self) -> int:
        return self.x_train.shape[1]

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """±1 target vectors (one-hot × 2 − 1)."""
        return torch.nn.functional.one_hot(labels, self.n_classes).float().mul_(2).sub_(1)

    def subset(self, n_train: Optional[int] = None, n_test: Optional[int] = None) -> "Dataset":
        """The first n_train / n_test samples (for smoke budgets); None keeps all."""
        return Dataset(self.name, self.x_train[:n_train], self.labels_train[:n_train],
                       self.x_test[:n_test], self.labels_test[:n_test], self.n_classes, self.digest,
                       self.pixel_inputs)


def _how_to_provide(name: str) -> str:
    folder = {"mnist": "MNIST/raw/", "fashion-mnist": "FashionMNIST/raw/", "cifar10": ""}[name]
    lines = [
        "Provide it in one of these ways:",
        "  1. with internet: run again with download allowed (the default) and torchvision fetches it;",
        f"  2. offline mirror: point ${MIRROR_VARIABLE} (or --data-mirror) at a folder holding "
        f"torchvision's layout ({folder or ''}{'the four .gz files' if folder else 'cifar-10-python.tar.gz'});",
        "  3. copy the files yourself into the data root, in the same layout.",
    ]
    if name == "fashion-mnist":
        lines.append("  (Debian/Ubuntu: `apt-get install dataset-fashion-mnist` is also used when present.)")
    return "\n".join(lines)


def _sha256(path: Path, decompress: bool = False) -> str:
    opener = gzip.open if decompress else open
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_verified(source: Path, destination: Path, md5: str, name: str) -> None:
    if not check_integrity(str(source), md5):
        raise DatasetError(
            f"{name}: corrupt file {source}: its md5 is not the expected {md5} "
            f"(torchvision's checksum).\n{_how_to_provide(name)}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)


def _torchvision_mnist_files(cls, raw: Path, mirror_raw: Optional[Path], name: str) -> None:
    """Put torchvision's .gz files into ``raw`` from the mirror, verified by md5."""
    for filename, md5 in cls.resources:
        target = raw / filename
        extracted = raw / filename[:-3]
        if extracted.exists() or check_integrity(str(target), md5):
            continue
        if mirror_raw is not None and (mirror_raw / filename).exists():
            _copy_verified(mirror_raw / filename, target, md5, name)


def _fashion_from_debian(raw: Path) -> None:
    """Decompress Debian's Fashion-MNIST into ``raw`` after checking each file's sha256."""
    for stem, sha in FASHION_MNIST_SHA256.items():
        target = raw / stem
        if target.exists():
            continue
        source = DEBIAN_FASHION_MNIST / f"{stem}.gz"
        if not source.exists():
            return
        found = _sha256(source, decompress=True)
        if found != sha:
            raise DatasetError(
                f"fashion-mnist: corrupt file {source}: the sha256 of its decompressed content is "
                f"{found}, expected {sha}.\n{_how_to_provide('fashion-mnist')}")
        raw.mkdir(parents=True, exist_ok=True)
        with gzip.open(source, "rb") as f, open(target, "wb") as out:
            shutil.copyfileobj(f, out)


def _check_extracted_fashion(raw: Path, repair: bool) -> None:
    """torchvision only checks that the decompressed files exist; we check their content too.
    With ``repair`` a corrupt file is deleted (to be extracted again), else it is an error."""
    for stem, sha in FASHION_MNIST_SHA256.items():
        path = raw / stem
        if path.exists() and _sha256(path) != sha:
            if repair:
                warnings.warn(f"fashion-mnist: corrupt file {path} (sha256 is not {sha}); deleting it to "
                              f"extract it again")
                path.unlink()
                continue
            raise DatasetError(
                f"fashion-mnist: corrupt file {path}: sha256 is not the expected {sha}.\n"
                f"{_how_to_provide('fashion-mnist')}")


def _cifar10_class():
    checksums = CIFAR10_CHECKSUMS

    class CheckedCIFAR10(torchvision.datasets.CIFAR10):
        tgz_md5 = checksums["tgz"]
        train_list = [list(e) for e in checksums["train_list"]]
        test_list = [list(e) for e in checksums["test_list"]]
        meta = {**torchvision.datasets.CIFAR10.meta, "md5": checksums["meta"]}

    return CheckedCIFAR10


def _load_torchvision(name: str, root: Path, mirror: Optional[Path], download: bool):
    """Return (train, test) torchvision datasets, after placing files from mirror/Debian."""
    if name in ("mnist", "fashion-mnist"):
        cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
        raw = root / cls.__name__ / "raw"
        mirror_raw = mirror / cls.__name__ / "raw" if mirror is not None else None
        if name == "fashion-mnist":
            _check_extracted_fashion(raw, repair=True)
        _torchvision_mnist_files(cls, raw, mirror_raw, name)
        if name == "fashion-mnist":
            _fashion_from_debian(raw)
            _check_extracted_fashion(raw, repair=False)
        have_all = all((raw / f[:-3]).exists() or check_integrity(str(raw / f), md5) for f, md5 in cls.resources)
    else:
        cls = _cifar10_class()
        archive = root / cls.filename
        have_all = _cifar_extracted_ok(cls, root)
        if not have_all and mirror is not None and (mirror / cls.filename).exists() and not check_integrity(
                str(archive), cls.tgz_md5):
            _copy_verified(mirror / cls.filename, archive, cls.tgz_md5, name)
        if not have_all and check_integrity(str(archive), cls.tgz_md5):
            have_all = True  # torchvision extracts the verified archive without going online
        elif not have_all and archive.exists():
            raise DatasetError(
                f"cifar10: corrupt file {archive}: its md5 is not the expected {cls.tgz_md5}.\n"
                f"{_how_to_provide(name)}")
    if not have_all and not download:
        raise DatasetError(f"{name}: files not found under {root} and download is off.\n{_how_to_provide(name)}")
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except (RuntimeError, OSError) as error:  # torchvision's download (URLError) or integrity failure
        if have_all:  # nothing was downloaded: the files are there but do not parse
            raise RuntimeError(f"the files under {root} did not parse: {error}") from error
        raise DatasetError(f"{name}: not found under {root}, and the download failed ({error}).\n"
                           f"{_how_to_provide(name)}") from error
    return train, test


def _cifar_extracted_ok(cls, root: Path) -> bool:
    folder = root / cls.base_folder
    return all(check_integrity(str(folder / f), md5) for f, md5 in cls.train_list + cls.test_list) and \
        check_integrity(str(folder / cls.meta["filename"]), cls.meta["md5"])


def _to_protocol(images) -> torch.Tensor:
    images = torch.as_tensor(np.asarray(images))
    return images.reshape(images.shape[0], -1).to(torch.float32).div_(127.5).sub_(1.0)


_MEMORY_CACHE: Dict[tuple, Dataset] = {}


def resolve_root(root: Union[str, Path, None]) -> Path:
    return Path(root or os.environ.get(ROOT_VARIABLE) or PROJECT_DATA_ROOT).expanduser().resolve()


def resolve_mirror(mirror: Union[str, Path, None]) -> Optional[Path]:
    source = "--data-mirror / the data_mirror argument" if mirror else f"${MIRROR_VARIABLE}"
    mirror = mirror or os.environ.get(MIRROR_VARIABLE)
    if not mirror:
        return None
    path = Path(mirror).expanduser().resolve()
    if not path.is_dir():
        raise DatasetError(f"data mirror {path} is not a folder (set by {source}, relative paths taken from "
                           f"{Path.cwd()}); give a folder in torchvision's layout")
    return path


def array_digest(arrays: dict) -> str:
    """sha256 over the decoded arrays (name, dtype, shape and bytes of each, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name].contiguous()
        digest.update(f"{name}:{array.dtype}:{tuple(array.shape)};".encode())
        digest.update(array.numpy().tobytes())
    return digest.hexdigest()


ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")


def _decode(name: str, root: Path, mirror: Optional[Path], download: bool) -> dict:
    train, test = _load_torchvision(name, root, mirror, download)
    return {
        "train_images": torch.as_tensor(np.asarray(train.data)),
        "train_labels": torch.as_tensor(np.asarray(train.targets), dtype=torch.int64),
        "test_images": torch.as_tensor(np.asarray(test.data)),
        "test_labels": torch.as_tensor(np.asarray(test.targets), dtype=torch.int64),
    }


def _extracted_files(name: str, root: Path) -> list:
    if name == "cifar10":
        return []
    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    raw = root / cls.__name__ / "raw"
    return [raw / filename[:-3] for filename, _ in cls.resources]


def _decode_verified(name: str, root: Path, mirror: Optional[Path], download: bool) -> tuple:
    """Decode the dataset's files and check the arrays against their known digest. Corrupt
    extracted files are deleted and extracted again from the verified archives, once."""
    expected = DECODED_SHA256.get(name)
    for attempt in (1, 2):
        try:
            arrays = _decode(name, root, mirror, download)
            digest = array_digest(arrays)
            problem = None if expected is None or digest == expected else \
                f"the decoded arrays' sha256 is {digest}, expected {expected}"
        except DatasetError:
            raise
        except Exception as error:  # a truncated or garbled file: torchvision's parser fails
            problem = f"decoding failed ({type(error).__name__}: {error})"
        if problem is None:
            return arrays, digest
        files = [path for path in _extracted_files(name, root) if path.exists()]
        if attempt == 1 and files:
            warnings.warn(f"{name}: {problem}; deleting the extracted files {', '.join(map(str, files))} "
                          f"and extracting them again from the verified archives")
            for path in files:
                path.unlink()
            continue
        raise DatasetError(f"{name}: corrupt data under {root}: {problem}.\n{_how_to_provide(name)}")
    raise AssertionError("unreachable")


def _read_cache(name: str, cache_file: Path) -> tuple:
    """The cached decoded arrays if they are intact (their digest checks out), else None — a
    corrupt, truncated or empty cache is named in a warning and deleted, never used."""
    if not cache_file.exists():
        return None, None
    try:
        content = torch.load(cache_file, weights_only=True)
        arrays = {key: content[key] for key in ARRAY_NAMES}
        digest = array_digest(arrays)
        expected = DECODED_SHA256.get(name, content.get("digest"))
        if digest != expected:
            raise ValueError(f"its arrays' sha256 is {digest}, expected {expected}")
    except Exception as error:  # unreadable (truncated, empty, garbled) or wrong content
        warnings.warn(f"{name}: the decode cache {cache_file} is corrupt ({type(error).__name__}: {error}); "
                      f"deleting it and decoding the dataset's files again")
        cache_file.unlink(missing_ok=True)
        return None, None
    return arrays, digest


def load_dataset(name: str, root: Union[str, Path, None] = None, mirror: Union[str, Path, None] = None,
                 download: bool = True) -> Dataset:
    """Load ``name`` ("mnist", "fashion-mnist", "cifar10") as protocol-ready tensors.

    Decoded images are cached as ``<root>/bnnlib-cache/<name>.pt`` (uint8) after the first
    load, and in memory for the life of the process. Every load from disk checks the decoded
    arrays against their known sha256 (``DECODED_SHA256``): a corrupt cache is rebuilt, corrupt
    extracted files are extracted again from the verified archives, and what cannot be
    repaired raises a DatasetError naming the files and the ways to provide them.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    root = resolve_root(root)
    key = (name, str(root))
    if key in _MEMORY_CACHE:
        return _MEMORY_CACHE[key]
    cache_file = root / "bnnlib-cache" / f"{name}.pt"
    arrays, digest = _read_cache(name, cache_file)
    if arrays is None:
        arrays, digest = _decode_verified(name, root, resolve_mirror(mirror), download)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
        torch.save({**arrays, "digest": digest}, partial)
        os.replace(partial, cache_file)  # atomic: a concurrent reader never sees half a file
    dataset = Dataset(name, _to_protocol(arrays["train_images"]), arrays["train_labels"],
                      _to_protocol(arrays["test_images"]), arrays["test_labels"], digest=digest,
                      pixel_inputs=True)
    _MEMORY_CACHE[key] = dataset
    return dataset
