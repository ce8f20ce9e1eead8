"""Export a generator for deployment: ONNX (.onnx) or a torch.export program (.pt2).

The exported graph is the generator in inference form (eval mode, the model's test-time norm),
taking x: (N, C, H, W) float32 in [-1, 1] with N, H and W dynamic (H and W multiples of the
generator's stride; translate pads to that, an exported model expects the caller to). A conditional
generator (StarGAN) takes its label as a second input, cond: (N, n_domains) float32. The file also
carries a JSON description (ONNX metadata_props / the .pt2's extra file "img2img.json"): method,
direction, stride, input range, and the label vector of every direction.

After writing, the export is checked against PyTorch on a random input of another size and batch
than the one traced: onnxruntime runs the .onnx, torch.export.load the .pt2.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.export import Dim

from img2img.atomic import OutputWriteError, atomic_path
from img2img.errors import UserError
from img2img.modelfile import ModelFile, load_model
from img2img.nets import generator_stride

ONNX_HINT = 'ONNX export needs onnx, onnxscript and onnxruntime: pip install "img2img[onnx]"'
FORMATS = (".onnx", ".pt2")
META_KEY = "img2img.json"


@dataclass
class ExportReport:
    path: Path
    format: str
    direction: str
    generator: str
    stride: int
    conditional: bool
    check_shape: tuple[int, ...]
    max_abs_diff: float


class _Conditional(nn.Module):
    """forward(x, cond) with cond required, so it becomes a graph input."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(x, cond)


class _Plain(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _size_one_allowed() -> contextlib.AbstractContextManager:
    """Let symbolic sizes take the value 1 at run time.

    torch.export assumes a traced dynamic size is never 0 or 1 and guards on it, so a U-Net
    exported at 2x2 stride blocks would refuse a 256 px image (1x1 at its bottleneck). Size-oblivious
    tracing drops that assumption; the parity check below exercises a size of one block.
    """
    try:
        from torch.fx.experimental import _config as fx_config

        return fx_config.patch(backed_size_oblivious=True)
    except (ImportError, AttributeError):  # pragma: no cover - older/newer torch without the switch
        return contextlib.nullcontext()


def _pick_direction(mf: ModelFile, direction: str | None) -> str:
    directions = mf.directions
    if direction is None:
        return "a2b" if "a2b" in directions else next(iter(directions))
    if direction not in directions:
        raise UserError(f"this {mf.method} model has no direction {direction!r}; it has: {', '.join(directions)}")
    return direction


def _example(arch: dict, stride: int, batch: int, h: int, w: int, cond: list[float] | None, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, arch["in_channels"], h, w, generator=g) * 2 - 1
    n_cond = arch.get("cond_channels", 0)
    if not n_cond:
        return (x,)
    c = torch.tensor(cond, dtype=torch.float32)[None].expand(batch, -1).clone() if cond is not None \
        else (torch.rand(batch, n_cond, generator=g) > 0.5).float()
    return (x, c)


def export_model(model: str | Path, output: str | Path, direction: str | None = None, *,
                 check_size: int | None = None) -> ExportReport:
    """Write the direction's generator to output (.onnx or .pt2) and check it against PyTorch."""
    output = Path(output)
    fmt = output.suffix.lower()
    if fmt not in FORMATS:
        raise UserError(f"-o {output}: the file name decides the format; end it in .onnx or .pt2")
    if fmt == ".onnx":
        try:
            import onnxruntime  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            raise UserError(ONNX_HINT) from None
    mf = model if isinstance(model, ModelFile) else load_model(model)
    if output.resolve() == mf.path.resolve():
        raise UserError(f"-o {output} is the model file itself; choose another name")
    direction = _pick_direction(mf, direction)
    gen_name = mf.directions[direction]["generator"]
    arch = mf.data["generators"][gen_name]["arch"]
    stride = generator_stride(arch["name"])
    conditional = bool(arch.get("cond_channels", 0))
    net = mf.generator(gen_name, "cpu")
    wrapper = (_Conditional(net) if conditional else _Plain(net)).eval()

    # Trace at 2x2 stride blocks and batch 2 (sizes of 1 would be specialised), with symbolic sizes.
    batch, hb, wb = Dim("batch", min=1, max=4096), Dim("h_blocks", min=1, max=4096), Dim("w_blocks", min=1, max=4096)
    shapes = {"x": {0: batch, 2: stride * hb, 3: stride * wb}}
    if conditional:
        shapes["cond"] = {0: batch}
    cond = mf.directions[direction].get("cond")
    example = _example(arch, stride, 2, 2 * stride, 2 * stride, cond, seed=0)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _size_one_allowed():
            warnings.simplefilter("ignore")
            program = torch.export.export(wrapper, example, dynamic_shapes=shapes)
    except Exception as exc:  # noqa: BLE001 - report the exporter's reason on one line
        raise UserError(f"torch.export failed for {arch['name']}: {str(exc).splitlines()[0][:200]}") from None

    same_direction = {d: e for d, e in mf.directions.items() if e.get("generator") == gen_name}
    meta = {"format": "img2img-export/1", "method": mf.method, "direction": direction, "generator": gen_name,
            "arch": arch["name"], "stride": stride, "channels": arch["in_channels"],
            "out_channels": arch["out_channels"],
            "input": f"x: float32 (N, {arch['in_channels']}, H, W) in [-1, 1], H and W multiples of stride",
            "output": f"float32 (N, {arch['out_channels']}, H, W) in [-1, 1]",
            "inputs": ["x", "cond"] if conditional else ["x"],
            "cond": {d: e["cond"] for d, e in same_direction.items() if "cond" in e} if conditional else {},
            "domains": list(mf.data.get("domains", [])), "test_time_norm": mf.data.get("test_time_norm", "running"),
            # pix2pix: dropout stays on in the exported graph too, as the same fixed masks (integer ops)
            "test_dropout_seed": mf.test_dropout_seed}
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder {output.parent}: {exc.strerror or exc}") from None

    # The check uses another batch and a non-square size near the training size.
    side = max(stride, -(-(check_size or mf.data.get("image_size", 2 * stride)) // stride) * stride)
    check = _example(arch, stride, 1, side, side + stride, cond, seed=1)
    with torch.no_grad():
        expected = wrapper(*check)
    # Written under a temporary name and checked there: the final name only ever holds a complete export.
    with atomic_path(output) as tmp:
        if fmt == ".pt2":
            _write(lambda: torch.export.save(program, tmp, extra_files={META_KEY: json.dumps(meta)}), output)
            got = run_pt2(tmp, *check)
        else:
            _write_onnx(program, tmp, meta, conditional, output)
            got = run_onnx(tmp, *check)
    diff = float((got - expected).abs().max())
    return ExportReport(output, fmt[1:], direction, gen_name, stride, conditional, tuple(check[0].shape), diff)


def _write(save, output: Path) -> None:
    """Run a library's save call; a failure to write (full disk...) becomes one line naming the file."""
    try:
        save()
    except OSError as exc:
        raise OutputWriteError.wrap(exc, output) from None
    except Exception as exc:  # noqa: BLE001 - serialisers wrap I/O errors in their own types
        raise OutputWriteError(f"cannot write {output}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None


def _write_onnx(program: torch.export.ExportedProgram, tmp: Path, meta: dict, conditional: bool, output: Path) -> None:
    names = ["x", "cond"] if conditional else ["x"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(program, input_names=names, output_names=["y"], dynamo=True,
                                             verbose=False, optimize=True)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"ONNX conversion failed: {str(exc).splitlines()[0][:200]}") from None
    onnx_program.model.metadata_props[META_KEY] = json.dumps(meta)
    _write(lambda: onnx_program.save(str(tmp), external_data=False), output)


def run_onnx(path: str | Path, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Run an exported .onnx with onnxruntime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"x": x.numpy()}
    if cond is not None:
        feeds["cond"] = cond.numpy()
    return torch.from_numpy(session.run(None, feeds)[0])


def run_pt2(path: str | Path, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """Run an exported .pt2 program."""
    program = torch.export.load(str(path))
    with torch.no_grad():
        return program.module()(x) if cond is None else program.module()(x, cond)


def read_metadata(path: str | Path) -> dict:
    """The JSON description stored in an exported file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(props[META_KEY])
    extra = {META_KEY: ""}
    torch.export.load(str(path), extra_files=extra)
    return json.loads(extra[META_KEY])
