"""`cnnkit data fetch` and `cnnkit data info`, run as real commands. Never the network:
fetches use --from (the shared MNIST copy, or folders made here)."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
from conftest import SHARED_MNIST, needs_mnist

FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def label_counts(name: str) -> list[int]:
    raw = gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes())
    return np.bincount(np.frombuffer(raw, np.uint8, offset=8), minlength=10).tolist()


@needs_mnist
def test_fetch_from_folder_then_info(cli, tmp_path):
    data = tmp_path / "data"
    r = cli("data", "fetch", "mnist", "--from", str(SHARED_MNIST), "--data-dir", str(data))
    assert r.returncode == 0, r.stderr
    assert f"4 file(s) from {SHARED_MNIST}, verified, stored in {data / 'mnist'}" in r.stdout
    assert sorted(p.name for p in (data / "mnist").iterdir()) == sorted(FILES)

    again = cli("data", "fetch", "mnist", "--from", str(SHARED_MNIST), "--data-dir", str(data))
    assert again.returncode == 0 and "already present and verified" in again.stdout

    r = cli("data", "info", "--data-dir", str(data), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["data_dir"] == str(data)
    mnist = next(d for d in report["datasets"] if d["name"] == "mnist")
    assert mnist["status"] == "verified"
    assert {f["name"]: f["size"] for f in mnist["files"]} == {
        p.name: p.stat().st_size for p in (data / "mnist").iterdir()
    }
    splits = {s["split"]: s for s in mnist["splits"]}
    assert splits["train"]["count"] == 60000 and splits["test"]["image_shape"] == [28, 28]
    assert splits["train"]["label_counts"] == label_counts("train-labels-idx1-ubyte")
    assert splits["test"]["label_counts"] == label_counts("t10k-labels-idx1-ubyte")
    others = {d["name"]: d["status"] for d in report["datasets"] if d["name"] != "mnist"}
    assert others == {"fashion-mnist": "missing", "cifar10": "missing"}

    table = cli("data", "info", "--data-dir", str(data))
    assert table.returncode == 0
    assert "mnist (MNIST): verified, 4/4 files" in table.stdout
    assert "get it with: cnnkit data fetch cifar10" in table.stdout


@needs_mnist
def test_info_names_the_corrupt_file(cli, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILES:
        (folder / name).write_bytes(gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes()))
    with (folder / FILES[3]).open("r+b") as f:
        f.truncate(9000)
    r = cli("data", "info", "mnist", "--data-dir", str(tmp_path), "--json")
    [mnist] = json.loads(r.stdout)["datasets"]
    assert mnist["status"] == "corrupt"
    assert [s["split"] for s in mnist["splits"]] == ["train"]  # the test split is refused
    [problem] = mnist["problems"]
    assert f"{folder / FILES[3]}: checksum mismatch" in problem


def test_data_dir_comes_from_the_environment(cli, tmp_path):
    r = cli("data", "info", "--json", env={"CNNKIT_DATA": str(tmp_path / "env")})
    assert json.loads(r.stdout)["data_dir"] == str(tmp_path / "env")


@pytest.mark.parametrize(
    "args,message",
    [
        (["fetch", "svhn", "--from", "."], "Unknown dataset 'svhn'; known datasets: mnist"),
        (["fetch", "mnist", "--from", "empty"], "empty: does not have train-images-idx3-ubyte"),
        (["fetch", "mnist", "--from", "nowhere"], "nowhere: no such folder"),
        (["info", "svhn"], "Unknown dataset 'svhn'"),
    ],
)
def test_errors_are_one_line_with_exit_2(cli, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    r = cli("data", *args, "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@needs_mnist
def test_fetch_of_a_corrupt_copy_stores_nothing(cli, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(SHARED_MNIST, bad)
    gz = bad / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-1000])
    r = cli("data", "fetch", "mnist", "--from", str(bad), "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 2
    assert "t10k-images-idx3-ubyte.gz: corrupt or truncated gzip" in r.stderr
    assert "nothing was stored" in r.stderr
    assert not (tmp_path / "data" / "mnist").exists()
