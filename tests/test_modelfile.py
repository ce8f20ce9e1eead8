"""model.pt: written by a tiny training run, reloaded to the same outputs, and every bad file refused safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from img2img import config as config_mod
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.modelfile import FORMAT_VERSION, load_model
from tiny_runs import tiny_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, paired_dir, unpaired_dirs) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("modelfile_runs")
    return {m: tiny_run(m, base / m, paired_dir, unpaired_dirs) for m in ("pix2pix", "cyclegan")}


def in_memory_method(run: Path):
    """The method as it stood when the run ended, rebuilt from its checkpoint (nets, optimizers, pool)."""
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    cls = get_method(ckpt["config"]["method"])
    cfg = config_mod.from_dict(ckpt["config"], cls)
    method = cls(cfg, torch.device("cpu"))
    method.load_state_dict(ckpt["method"])
    return method


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_model_file_reproduces_the_trained_generators(runs, method):
    run = runs[method]
    mf = load_model(run / "model.pt")
    assert mf.method == method and mf.data["format_version"] == FORMAT_VERSION and mf.data["step"] == 2
    live = in_memory_method(run)
    gens, directions = live.exported()
    assert set(mf.directions) == set(directions)
    torch.manual_seed(3)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    for name, (_arch, net) in gens.items():
        expected = live.inference_copy(net)(x)
        loaded = mf.generator(name)
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
        with torch.no_grad():
            got = loaded(x)
        assert torch.equal(got, expected), f"{method}/{name}: loaded generator differs from the trained one"


def test_model_file_is_plain_data(runs):
    for run in runs.values():
        data = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
        assert isinstance(data, dict)
        assert {"format_version", "method", "generators", "directions", "config", "image_size", "channels"} <= data.keys()
        for g in data["generators"].values():
            assert isinstance(g["arch"], dict) and all(torch.is_tensor(t) for t in g["state_dict"].values())
        # No optimizer or discriminator weights in the inference file.
        assert not any(k.startswith("D") for k in data["generators"])
        assert data["image_size"] == 32 and data["config"]["net"]["ngf"] == 8


def test_model_file_needs_no_architecture_flags(runs):
    """Translate rebuilds the net from the file alone: 'unet' was stored already resolved."""
    mf = load_model(runs["pix2pix"] / "model.pt")
    arch = mf.data["generators"]["G"]["arch"]
    assert arch["name"] == "unet_32" and arch["norm"] == "batch" and arch["ngf"] == 8
    assert mf.data["test_time_norm"] == "per_image"


class Payload:
    """An arbitrary class instance: unpickling it needs this module, i.e. code outside the file."""

    def __init__(self):
        self.x = 1


class RunsCode:
    """Unpickling this calls os.system: the classic pickle exploit."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def valid_payload(runs) -> dict:
    return torch.load(runs["pix2pix"] / "model.pt", map_location="cpu", weights_only=True)


def test_pickled_class_instance_is_refused(runs, tmp_path):
    data = valid_payload(runs)
    data["extra"] = Payload()
    path = tmp_path / "evil.pt"
    torch.save(data, path)
    with pytest.raises(UserError, match="refused"):
        load_model(path)


def test_pickled_code_is_refused_and_never_runs(runs, tmp_path):
    marker = tmp_path / "pwned"
    data = valid_payload(runs)
    data["config"] = RunsCode(marker)
    path = tmp_path / "evil.pt"
    torch.save(data, path)
    assert not marker.exists()
    with pytest.raises(UserError) as err:
        load_model(path)
    assert "refused" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists(), "loading the model file ran code"


def test_newer_format_version_is_refused(runs, tmp_path):
    data = valid_payload(runs)
    data["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.pt"
    torch.save(data, path)
    with pytest.raises(UserError, match="newer"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.99])
def test_truncated_file_is_refused(runs, tmp_path, keep):
    raw = (runs["pix2pix"] / "model.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(UserError):
        load_model(path)


def test_other_files_are_refused(runs, tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError):
        load_model(junk)
    with pytest.raises(UserError, match="checkpoint"):  # the training checkpoint is not the model file
        load_model(runs["pix2pix"] / "checkpoint.pt")
    plain = tmp_path / "tensor.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    with pytest.raises(UserError, match="not an img2img model file"):
        load_model(plain)
