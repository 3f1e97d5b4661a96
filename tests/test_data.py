"""Dataset loading: offline mirror, Debian's Fashion-MNIST, checksums, the CIFAR-10 format."""

import hashlib
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bnnlib import data as data_module
from bnnlib.data import DEBIAN_FASHION_MNIST, DatasetError, load_dataset


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    monkeypatch.delenv("BNNLIB_DATA_MIRROR", raising=False)
    monkeypatch.delenv("BNNLIB_DATA_ROOT", raising=False)
    data_module._MEMORY_CACHE.clear()


def test_mnist_from_mirror_is_protocol_ready(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == torch.float32
    assert mnist.x_train.min() == -1.0 and mnist.x_train.max() == 1.0
    assert mnist.labels_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the real MNIST's first labels
    targets = mnist.targets(mnist.labels_train[:3])
    assert targets.tolist()[0] == [-1, -1, -1, -1, -1, 1, -1, -1, -1, -1]


def test_second_load_reads_the_decoded_cache(mnist_mirror, tmp_path):
    first = load_dataset("mnist", root=tmp_path, mirror=mnist_mirror, download=False)
    assert (tmp_path / "bnnlib-cache" / "mnist.pt").exists()
    data_module._MEMORY_CACHE.clear()
    shutil.rmtree(tmp_path / "MNIST")  # the cache alone must suffice
    again = load_dataset("mnist", root=tmp_path, download=False)
    assert torch.equal(first.x_test, again.x_test)


def test_corrupt_mirror_file_is_named_with_its_expected_checksum(mnist_mirror, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(mnist_mirror / "MNIST", mirror / "MNIST")
    bad = mirror / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    bad.chmod(0o644)
    bad.write_bytes(bad.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", root=tmp_path / "root", mirror=mirror, download=False)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "ec29112dd5afa0611ce80d1b7f02629c" in message
    assert "BNNLIB_DATA_MIRROR" in message and "internet" in message


def test_missing_data_without_download_says_how_to_provide_it(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_dataset("mnist", root=tmp_path, download=False)
    message = str(error.value)
    assert "not found" in message and "1." in message and "2." in message and "3." in message


def test_unknown_dataset_lists_the_accepted():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'; accepted: mnist, fashion-mnist, cifar10"):
        load_dataset("svhn")


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package(tmp_path):
    fashion = load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert fashion.x_train.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    assert fashion.labels_train[:5].tolist() == [9, 0, 0, 3, 0]  # ankle boot, T-shirt, …
    # a corrupted decompressed file is caught by its sha256, named, and extracted again
    data_module._MEMORY_CACHE.clear()
    shutil.rmtree(tmp_path / "bnnlib-cache")
    path = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x07")
    with pytest.warns(UserWarning, match="corrupt file .*t10k-labels-idx1-ubyte"):
        again = load_dataset("fashion-mnist", root=tmp_path, download=False)
    assert again.digest == data_module.DECODED_SHA256["fashion-mnist"]
    assert torch.equal(again.labels_test, fashion.labels_test)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_tiny_cifar10(folder: Path, per_batch=6):
    """A CIFAR-10 archive in the real format (pickled batches), with 6 images per batch."""
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        content = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                   "labels": rng.integers(0, 10, per_batch).tolist(), "batch_label": name}
        with open(batches / name, "wb") as f:
            pickle.dump(content, f)
    with open(batches / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    checksums = {"tgz": _md5(archive),
                 "train_list": [[n, _md5(batches / n)] for n in names[:5]],
                 "test_list": [[names[5], _md5(batches / names[5])]],
                 "meta": _md5(batches / "batches.meta")}
    shutil.rmtree(batches)
    return archive, checksums


def test_cifar10_archive_from_mirror_through_torchvision(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive, checksums = write_tiny_cifar10(mirror)
    monkeypatch.setattr(data_module, "CIFAR10_CHECKSUMS", checksums)
    monkeypatch.setenv("BNNLIB_DATA_MIRROR", str(mirror))
    cifar = load_dataset("cifar10", root=tmp_path / "root", download=False)
    assert cifar.x_train.shape == (30, 3072) and cifar.x_test.shape == (6, 3072)
    assert cifar.x_train.min() >= -1 and cifar.x_train.max() <= 1
    with open(tmp_path / "root" / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f)
    expected = torch.tensor(raw["data"]).view(6, 3, 32, 32).permute(0, 2, 3, 1).reshape(6, -1).float() / 127.5 - 1
    assert torch.equal(cifar.x_test, expected)  # torchvision's HWC layout, flattened
    assert cifar.labels_test.tolist() == raw["labels"]


def test_cifar10_corrupt_archive_is_reported(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive, checksums = write_tiny_cifar10(mirror)
    monkeypatch.setattr(data_module, "CIFAR10_CHECKSUMS", {**checksums, "tgz": "0" * 32})
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz.*md5.*0{32}"):
        load_dataset("cifar10", root=tmp_path / "root", mirror=mirror, download=False)
