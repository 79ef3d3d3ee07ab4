"""Checkpoints: self-describing, atomic, loaded safely; bad files give one clear error."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from cnnkit.core.errors import CnnkitError
from cnnkit.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from cnnkit.models.registry import create_model


def _save(path, model, **overrides):
    kwargs = dict(
        model_name="simple-cnn",
        model_args={},
        state_dict=model.state_dict(),
        config={"dataset": "mnist", "normalize": (0.1307, 0.3081), "seed": 0},
        optimizer_state={"step": 3, "moments": np.arange(6, dtype=np.float32).reshape(2, 3)},
        epoch=2,
        rng_state={
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "shuffle": np.random.default_rng(7).bit_generator.state,
        },
        history=[{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.75}],
        initial_conv1_weight=np.ones((32, 1, 3, 3), np.float32),
    )
    kwargs.update(overrides)
    return save_checkpoint(path, **kwargs)


def test_round_trip_rebuilds_the_model_from_the_file_alone(tmp_path):
    torch.manual_seed(0)
    model = create_model("simple-cnn")
    path = _save(tmp_path / "c.pt", model)
    ckpt = load_checkpoint(path)
    assert not ckpt.model.training
    assert type(ckpt.model) is type(model)
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[key], value), key
    assert ckpt.model_name == "simple-cnn" and ckpt.model_args == {}
    assert ckpt.epoch == 2
    assert ckpt.history[-1] == {"epoch": 2, "test_acc": 0.75}
    assert ckpt.config["normalize"] == (0.1307, 0.3081)
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    assert torch.equal(ckpt.model(x), model(x))


def test_numpy_arrays_and_rng_states_come_back_exactly(tmp_path):
    rng = np.random.default_rng(7)
    state = {"w": rng.standard_normal((3, 4)), "u": np.arange(5, dtype=np.uint32)}
    path = _save(tmp_path / "c.pt", create_model("simple-cnn"), optimizer_state=state)
    raw = read_checkpoint(path)
    for key, value in state.items():
        got = raw["optimizer_state"][key]
        assert isinstance(got, np.ndarray) and got.dtype == value.dtype
        np.testing.assert_array_equal(got, value)
    # every RNG continues exactly where it was saved
    expected = np.random.default_rng(7).random(3)
    restored = np.random.default_rng()
    restored.bit_generator.state = raw["rng_state"]["shuffle"]
    np.testing.assert_array_equal(restored.random(3), expected)
    saved_np = raw["rng_state"]["numpy"]
    np.random.set_state(saved_np)
    a = np.random.random(3)
    np.random.set_state(saved_np)
    np.testing.assert_array_equal(np.random.random(3), a)
    random.setstate(raw["rng_state"]["python"])
    torch.set_rng_state(raw["rng_state"]["torch"])
    assert raw["initial_conv1_weight"].shape == (32, 1, 3, 3)


def test_model_args_rebuild_a_non_default_model(tmp_path):
    model = create_model("conv-block", in_channels=1, out_channels=8)
    path = _save(
        tmp_path / "c.pt",
        model,
        model_name="conv-block",
        model_args={"in_channels": 1, "out_channels": 8},
    )
    assert load_checkpoint(path).model.conv.weight.shape == (8, 1, 3, 3)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = create_model("simple-cnn")
    path = _save(tmp_path / "c.pt", model)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _save(path, model, epoch=3)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_missing_file(tmp_path):
    with pytest.raises(CnnkitError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pt")


def test_garbage_and_truncated_files_name_the_path(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CnnkitError, match=r"garbage\.pt: not a cnnkit checkpoint"):
        load_checkpoint(garbage)
    good = _save(tmp_path / "good.pt", create_model("simple-cnn"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CnnkitError, match=r"truncated\.pt"):
        load_checkpoint(truncated)


def test_a_plain_torch_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(create_model("simple-cnn").state_dict(), path)
    with pytest.raises(CnnkitError, match=r"weights\.pt: not a cnnkit checkpoint"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "cnnkit-checkpoint", "version": 1, "x": Payload()}, path)
    with pytest.raises(CnnkitError, match=r"evil\.pt: refused"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_weights_that_do_not_fit_the_model(tmp_path):
    path = _save(tmp_path / "c.pt", create_model("custom-cnn"))  # labelled simple-cnn
    with pytest.raises(CnnkitError, match="do not fit model 'simple-cnn'"):
        load_checkpoint(path)


def _stored_entry_offset(path, suffix):
    """Where the bytes of the zip entry ending in `suffix` start in the file (torch stores
    its tensors uncompressed), and the entry's size."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if i.filename.endswith(suffix)),
                   key=lambda i: i.file_size)  # fmt: skip
    data = path.read_bytes()
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_a_damaged_weight_byte_is_caught_by_the_digest(tmp_path):
    path = _save(tmp_path / "c.pt", create_model("simple-cnn"))
    start, size = _stored_entry_offset(path, "")  # the largest entry: fc1's weights
    assert size > 1_000_000
    data = bytearray(path.read_bytes())
    data[start + size // 2] ^= 0x40  # one bit of one weight
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    raw = torch.load(damaged, weights_only=True)  # torch itself reads it without complaint
    assert not torch.equal(raw["state_dict"]["fc1.weight"],
                           read_checkpoint(path)["state_dict"]["fc1.weight"])  # fmt: skip
    with pytest.raises(CnnkitError, match=r"damaged\.pt: damaged: the SHA-256 of its tensors"):
        load_checkpoint(damaged)


def test_the_digest_covers_every_tensor_and_its_shape():
    from cnnkit.models.checkpoint import tensor_digest

    a = {"w": torch.arange(6.0), "opt": {"m": [torch.zeros(2)]}}
    assert tensor_digest(a) == tensor_digest(
        {"w": torch.arange(6.0), "opt": {"m": [torch.zeros(2)]}}
    )
    changed = [
        {"w": torch.arange(6.0).reshape(2, 3), "opt": {"m": [torch.zeros(2)]}},  # shape
        {"w": torch.arange(6.0), "opt": {"m": [torch.tensor([0.0, 1e-30])]}},  # a nested value
        {"w": torch.arange(6, dtype=torch.float64), "opt": {"m": [torch.zeros(2)]}},  # dtype
        {"v": torch.arange(6.0), "opt": {"m": [torch.zeros(2)]}},  # a name
    ]
    assert len({tensor_digest(a), *map(tensor_digest, changed)}) == 5


def test_non_finite_weights_are_refused_at_load(tmp_path):
    model = create_model("simple-cnn")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["conv2.weight"][0, 0, 0, 0] = float("nan")
    state["fc2.bias"][3] = float("inf")
    path = _save(tmp_path / "nan.pt", model, state_dict=state)  # its digest is right
    with pytest.raises(CnnkitError, match=r"nan\.pt: refused: conv2\.weight holds 1 non-finite"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "normalize",
    [(0.1307, 0.0), (0.1307, -0.3), (float("nan"), 0.3), (0.1, float("inf")), ([0.1, 0.2], [0.3]),
     "0.1307", (0.1,), ([], [])],
)  # fmt: skip
def test_an_impossible_normalisation_is_refused_at_load(tmp_path, normalize):
    config = {"dataset": "mnist", "normalize": normalize}
    path = _save(tmp_path / "n.pt", create_model("simple-cnn"), config=config)
    with pytest.raises(CnnkitError, match=r"n\.pt: its config's normalize must be .*std > 0"):
        load_checkpoint(path)


def test_per_channel_normalisation_is_accepted(tmp_path):
    config = {"normalize": ([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])}
    path = _save(tmp_path / "c.pt", create_model("simple-cnn"), config=config)
    assert load_checkpoint(path).config["normalize"][1] == [0.25, 0.24, 0.26]


def test_a_run_folder_is_accepted_wherever_a_checkpoint_is(tmp_path):
    from cnnkit.models.checkpoint import resolve_checkpoint

    torch.manual_seed(0)
    model = create_model("simple-cnn")
    run = tmp_path / "run"
    _save(run / "checkpoint.pt", model)
    for loaded in (load_checkpoint(run), resolve_checkpoint(run), resolve_checkpoint(str(run))):
        assert loaded.path == run / "checkpoint.pt"
        assert torch.equal(loaded.model.conv1.weight, model.conv1.weight)
    assert read_checkpoint(run)["epoch"] == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnkitError, match=r"empty: a folder without checkpoint\.pt"):
        load_checkpoint(tmp_path / "empty")


def test_version_1_files_without_a_digest_still_load(tmp_path):
    """Written before digests (as the playground's bundled model may be)."""
    path = _save(tmp_path / "c.pt", create_model("simple-cnn"))
    raw = torch.load(path, weights_only=True)
    del raw["digest"]
    torch.save({**raw, "version": 1}, tmp_path / "v1.pt")
    assert load_checkpoint(tmp_path / "v1.pt").epoch == 2
    torch.save(raw, tmp_path / "v2.pt")  # version 2 must carry its digest
    with pytest.raises(CnnkitError, match=r"v2\.pt: checkpoint lacks digest"):
        load_checkpoint(tmp_path / "v2.pt")
