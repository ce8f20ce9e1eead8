"""StarGAN: labelled datasets and their errors, the objective's wiring, --to translation and exact resume."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import default_collate

from conftest import TINY_FLAGS, TINY_OVERRIDES
from img2img import config as config_mod
from img2img.config import DataConfig
from img2img.data.datasets import build_dataset
from img2img.data.domains import build_domain_dataset, domain_spec
from img2img.errors import UserError
from img2img.methods.stargan import StarGAN, classification_loss, patch_output_size
from img2img.modelfile import load_model
from img2img.translate.domains import AttributeTranslator, domain_translators

FAST = [*TINY_FLAGS, "--generator", "resnet_1", "--n-critic", "2", "--batch-size", "3"]
COLOURS = {"blue": (40, 40, 200), "green": (40, 190, 40), "red": (200, 40, 40)}


def noisy(colour, rng, size: int = 32, scale: float = 1.0) -> Image.Image:
    arr = np.array(colour, dtype=np.float32)[None, None] * scale + rng.normal(0, 15, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def domain_dir(tmp_path_factory) -> Path:
    """Three domain sub-folders (blue, green, red) of four 32x32 flat-colour images each."""
    root = tmp_path_factory.mktemp("domains") / "train"
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for k in range(4):
            noisy(colour, rng).save(root / name / f"{name}{k}.png")
    return root


@pytest.fixture(scope="module")
def attr_data(tmp_path_factory) -> tuple[Path, Path]:
    """Eight images with attributes Red (0/1) and Bright (-1/1) in a CSV, plus an unused column."""
    root = tmp_path_factory.mktemp("attrs")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for k in range(8):
        red, bright = k % 2, (k // 2) % 2
        noisy((200 if red else 40, 60, 60), rng, scale=1.0 if bright else 0.5).save(images / f"img{k}.png")
        rows.append([f"img{k}.png", red, 1 if bright else -1, "x"])
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "Red", "Bright", "note"])
        w.writerows(rows)
    return images, labels


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def read_images(paths) -> torch.Tensor:
    """Written images as one (N, 3, H, W) tensor in [-1, 1], the generator's output range."""
    return torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)
                        for p in paths]) / 127.5 - 1


def build(data: dict, **overrides) -> tuple[StarGAN, object]:
    cfg = config_mod.build_config(StarGAN, None, {**TINY_OVERRIDES, "train.steps": 10, "train.batch_size": 3,
                                                  "net.generator": "resnet_1", **data, **overrides})
    torch.manual_seed(0)
    return StarGAN(cfg, torch.device("cpu")), build_dataset("domains", cfg.data, "stargan")


# ----- data

def test_domain_folders_give_one_hot_labels_and_a_mixed_preview(domain_dir):
    ds = build_domain_dataset(DataConfig(data=str(domain_dir), image_size=32))
    assert ds.domains == ["blue", "green", "red"] and not ds.multi_label and len(ds) == 12
    item = ds[(5, 5, 0)]
    assert item["a"].shape == (3, 32, 32) and item["label"].tolist() == [0.0, 1.0, 0.0]
    assert Path(item["a_path"]).parent.name == "green"
    preview = [ds[k]["label"].argmax().item() for k in ds.preview_keys(4)]
    assert preview == [0, 1, 2, 0]  # round-robin over the domains


def test_attribute_csv_gives_multi_hot_labels(attr_data):
    images, labels = attr_data
    ds = build_domain_dataset(DataConfig(images=str(images), labels=str(labels), attrs="Bright,Red", image_size=32))
    assert ds.domains == ["Bright", "Red"] and ds.multi_label
    # img3: Red=1, Bright=1 ; img4: Red=0, Bright=-1 -> 0
    assert ds[(3, 3, 0)]["label"].tolist() == [1.0, 1.0]
    assert ds[(4, 4, 0)]["label"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("case,message", [
    ("no-subfolders", "must hold one sub-folder per domain"),
    ("one-domain", "holds one domain folder"),
    ("empty-domain", "holds no images"),
    ("missing-folder", "--data folder not found"),
    ("a-and-b", "not --a/--b"),
    ("images-without-labels", "--images DIR and --labels CSV go together"),
    ("nothing", "needs --data DIR"),
    ("attrs-with-data", "--attrs picks columns"),
])
def test_bad_folder_layouts_are_user_errors(tmp_path, case, message):
    root = tmp_path / "data"
    root.mkdir()
    kw = {"data": str(root)}
    if case == "no-subfolders":
        noisy((1, 2, 3), np.random.default_rng(0)).save(root / "x.png")
    elif case == "one-domain":
        (root / "cats").mkdir()
    elif case == "empty-domain":
        for d in ("cats", "dogs"):
            (root / d).mkdir()
        noisy((1, 2, 3), np.random.default_rng(0)).save(root / "cats" / "x.png")
    elif case == "missing-folder":
        kw = {"data": str(tmp_path / "nope")}
    elif case == "a-and-b":
        kw = {"a": str(root), "b": str(root)}
    elif case == "images-without-labels":
        kw = {"images": str(root)}
    elif case == "nothing":
        kw = {}
    elif case == "attrs-with-data":
        kw["attrs"] = "Male"
    with pytest.raises(UserError, match=message):
        build_domain_dataset(DataConfig(image_size=32, **kw))


@pytest.mark.parametrize("header,row,attrs,message", [
    (["name", "Red"], ["img0.png", "1"], None, "has no file column"),
    (["file", "Red"], ["missing.png", "1"], None, "1 file\\(s\\) listed in .* are not in"),
    (["file", "Red"], ["img0.png", "1"], "Red,Blue", "has no column Blue"),
    (["file", "Red"], ["img0.png", "yes"], None, "row 2, column Red: 'yes' is not an attribute value"),
    (["file", "Red"], None, None, "lists no images"),
    (["file"], ["img0.png"], None, "no attribute columns"),
    (["file", "Red"], ["img0.png", "1"], "Red,,Male", "separated by commas"),
])
def test_bad_label_csvs_are_user_errors(tmp_path, attr_data, header, row, attrs, message):
    images, _ = attr_data
    path = tmp_path / "labels.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        if row:
            w.writerow(row)
    with pytest.raises(UserError, match=message):
        build_domain_dataset(DataConfig(images=str(images), labels=str(path), attrs=attrs, image_size=32))
    with pytest.raises(UserError, match="--labels file not found"):
        domain_spec(DataConfig(images=str(images), labels=str(tmp_path / "none.csv")))


def test_center_crop_keeps_the_centre_square_then_resizes():
    """StarGAN's face preprocessing (data.center_crop): the centre square, resized; never padded when larger."""
    from img2img.data.transforms import PairTransform

    arr = np.zeros((60, 40, 3), dtype=np.uint8)
    arr[:] = (200, 0, 0)  # red border...
    arr[20:40, 10:30] = (0, 200, 0)  # ...around a green 20x20 centre
    img = Image.fromarray(arr)
    crop = PairTransform(DataConfig(image_size=16, load_size=16, flip=False, center_crop=20)).single(img)
    assert crop.shape == (3, 16, 16) and float(crop[1].min()) > 0.5 and float(crop[0].max()) < -0.5  # all green
    cached = PairTransform(DataConfig(image_size=16, load_size=16, flip=False, center_crop=20)).resized(img)
    assert cached.shape == (3, 16, 16) and int(cached[1].min()) > 150 and int(cached[0].max()) < 50  # the cache's stage too
    whole = PairTransform(DataConfig(image_size=16, load_size=16, flip=False, center_crop=100)).single(img)
    assert not bool((whole < -0.99).all(0).any())  # no black padding
    assert float((whole[0] > 0.5).float().mean()) > 0.3  # the red top and bottom bands are kept (40x40 of 40x60)
    plain = PairTransform(DataConfig(image_size=16, load_size=16, flip=False)).single(img)
    assert float((plain[0] > 0.5).float().mean()) > float((whole[0] > 0.5).float().mean())  # off: the whole image


# ----- the objective

def test_paper_defaults():
    cfg = config_mod.build_config(StarGAN, None, {"data.data": "x"})
    t, w = cfg.train, cfg.loss
    assert (t.gan_loss, t.gp_weight, t.lr, t.beta1, t.beta2, t.batch_size, t.lr_policy, t.decay_start) == \
        ("wgan-gp", 10.0, 1e-4, 0.5, 0.999, 16, "linear", 0.5)
    assert (w.lambda_cls, w.lambda_rec, w.n_critic, w.d_norm, w.d_form) == (1.0, 10.0, 5, "none", "paper")
    n = cfg.net
    assert (n.generator, n.norm, n.padding, n.resample_kernel, n.init, n.ngf, n.ndf, cfg.data.image_size) == \
        ("resnet_6", "instance_affine", "zero", 4, "default", 64, 64, 128)
    # With --d-form patch and the global D: 5 halvings at 128 px leave a 2x2 real/fake map, as the paper's D.
    assert patch_output_size(128, max(1, (128).bit_length() - 3)) == 2


def test_a_run_saved_before_the_paper_nets_resumes_with_its_own_nets():
    """Settings missing from an older run's saved config mean what that run used, not the new defaults."""
    saved = config_mod.build_config(StarGAN, None, {"data.data": "x"}).to_dict()
    for section, key in (("loss", "d_form"), ("net", "padding"), ("net", "resample_kernel")):
        del saved[section][key]
    saved["net"].update(norm="instance", init="normal")
    cfg = config_mod.from_dict(saved, StarGAN)
    assert (cfg.loss.d_form, cfg.net.padding, cfg.net.resample_kernel) == ("patch", "reflect", 3)


def test_paper_nets_are_the_authors_at_128_px(domain_dir):
    """yunjey/stargan model.py: D = 6 stride-2 4x4 convs 64..2048 wide, LeakyReLU 0.01, no norm, a 3x3
    real/fake head and a 2x2 class kernel at 128 px; G = 4x4 stride-2 down/up convs, affine IN, zero padding."""
    cfg = config_mod.build_config(StarGAN, None, {"data.data": str(domain_dir), "train.device": "cpu"})
    with torch.device("meta"):  # full size (D alone has 44 M weights): shapes only, nothing computed
        m = StarGAN(cfg, torch.device("meta"))
        src, cls = m.D.forward_with_classes(torch.empty(2, 3, 128, 128))
        y = m.G(torch.empty(2, 3, 128, 128), torch.empty(2, 3))
    convs = [c for c in m.D.trunk if isinstance(c, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == \
        [(64 * 2**i, (4, 4), (2, 2), (1, 1)) for i in range(6)]
    assert {c.negative_slope for c in m.D.trunk if isinstance(c, torch.nn.LeakyReLU)} == {0.01}
    assert not any(isinstance(x, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) for x in m.D.modules())
    assert (m.D.adv_head.kernel_size, m.D.cls_head.kernel_size) == ((3, 3), (2, 2))
    assert m.D.adv_head.bias is None and m.D.cls_head.bias is None
    assert src.shape == (2, 1, 2, 2) and cls.shape == (2, 3) and y.shape == (2, 3, 128, 128)
    resample = [c for c in m.G.model if isinstance(c, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and c.stride == (2, 2)]
    assert [(c.kernel_size, c.padding) for c in resample] == [((4, 4), (1, 1))] * 4
    norms = [x for x in m.G.modules() if isinstance(x, torch.nn.InstanceNorm2d)]
    assert norms and all(x.affine and not x.track_running_stats for x in norms)
    assert not any(isinstance(x, torch.nn.ReflectionPad2d) for x in m.G.modules())
    assert m.arch_g["first_pad"] == "zero" and m.arch_g["cond_channels"] == 3
    # PyTorch's default init (as the authors'): conv weights of std about 1/sqrt(3 * fan_in), not 0.02.
    small = StarGAN(config_mod.build_config(StarGAN, None, {**TINY_OVERRIDES, "data.data": str(domain_dir)}), torch.device("cpu"))
    w = small.G.model[1].weight.detach()
    assert float(w.std()) == pytest.approx((3 * w[0].numel()) ** -0.5, rel=0.15)


def test_classification_losses():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    one_hot = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    assert float(classification_loss(logits, one_hot, False)) == pytest.approx(float(F.cross_entropy(logits, torch.tensor([0, 2]))))
    multi = torch.tensor([[1.0, 0, 1.0], [0, 1.0, 1.0]])
    bce_sum = float(F.binary_cross_entropy_with_logits(logits, multi, reduction="sum"))
    assert float(classification_loss(logits, multi, True)) == pytest.approx(bce_sum / 2)


def test_d_has_no_norm_two_heads_and_g_takes_the_label_as_channels(domain_dir):
    m, ds = build({"data.data": str(domain_dir)})
    assert m.arch_d["norm"] == "none" and m.arch_d["n_classes"] == 3
    assert not any(isinstance(x, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) for x in m.D.modules())
    assert m.arch_g["cond_channels"] == 3 and m.G.model[1].in_channels == 3 + 3
    x = ds[(0, 0, 0)]["a"][None]
    src, cls = m.D.forward_with_classes(x)
    assert src.shape == (1, 1, 2, 2) and cls.shape == (1, 3)


def label_effect(g, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> float:
    """mean |G(x, c1) - G(x, c2)| / mean |G(x, c1)|: how far the label moves the output, relative to its scale."""
    with torch.no_grad():
        y1, y2 = g(x, c1), g(x, c2)
    return float((y1 - y2).abs().mean() / y1.abs().mean())


def one_hots(n: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two different one-hot targets for every image of a batch."""
    k = torch.arange(batch) % n
    return F.one_hot(k, n).float(), F.one_hot((k + 1) % n, n).float()


# Every generator form a StarGAN can use (ResNet with any block count and U-Net), with each norm under
# which the label was erased, at the paper's default init and at the CycleGAN-style N(0, 0.02) one.
GENERATOR_FORMS = [("resnet_6", {}), ("resnet_1", {}), ("resnet_2", {"net.padding": "reflect", "net.resample_kernel": 3}),
                   ("unet_32", {}), ("unet_16", {})]


@pytest.mark.parametrize("norm", ["instance_affine", "instance"])
@pytest.mark.parametrize("init", ["default", "normal"])
@pytest.mark.parametrize("generator,extra", GENERATOR_FORMS)
def test_the_label_moves_an_initialised_generators_output(domain_dir, generator, extra, norm, init):
    m, _ = build({"data.data": str(domain_dir)}, **{"net.generator": generator, "net.norm": norm, "net.init": init,
                                                    "net.ngf": 16, **extra})
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    g = m.inference_copy(m.G)
    assert label_effect(g, x, *one_hots(3, 6)) > 0.05


def test_reflection_padding_before_instance_norm_erases_the_label():
    """The old arrangement, pinned: a reflection-padded first conv turns each constant label map into a
    per-channel offset and the instance norm after it subtracts that offset, so the label changes
    nothing (float round-off only). Zero padding, on the same weights, lets it through."""
    from img2img.nets import build_generator

    old = {"name": "resnet_6", "in_channels": 3, "out_channels": 3, "ngf": 16, "norm": "instance", "dropout": False,
           "cond_channels": 4}  # an arch dict as files written before first_pad hold it
    torch.manual_seed(0)
    g_old = build_generator(old).eval()
    g_new = build_generator({**old, "first_pad": "zero"}).eval()
    assert isinstance(g_old.model[0], torch.nn.ReflectionPad2d) and isinstance(g_new.model[0], torch.nn.ZeroPad2d)
    g_new.load_state_dict(g_old.state_dict())  # same layers, same weight names: only the padding differs
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    c1, c2 = one_hots(4, 4)
    assert label_effect(g_old, x, c1, c2) < 1e-4
    assert label_effect(g_new, x, c1, c2) > 0.05


def test_a_model_file_from_before_the_fix_loads_and_behaves_as_it_did(tmp_path):
    """Arch dicts without padding/first_pad/resample_kernel keys rebuild the reflection-padded 3x3 net."""
    from img2img.modelfile import save_model
    from img2img.nets import build_generator

    old = {"name": "resnet_2", "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "instance", "dropout": False,
           "cond_channels": 3}
    torch.manual_seed(0)
    net = build_generator(old)
    cfg = config_mod.build_config(StarGAN, None, {**TINY_OVERRIDES, "data.data": "x"}).to_dict()
    save_model(tmp_path / "old.pt", method="stargan", generators={"G": (old, net)}, config=cfg, step=1,
               directions={"to:a": {"generator": "G", "cond": [1.0, 0.0, 0.0]}}, domains=["a", "b", "c"])
    loaded = load_model(tmp_path / "old.pt").generator("G")
    assert [type(x) for x in loaded.model[:2]] == [torch.nn.ReflectionPad2d, torch.nn.Conv2d]
    assert loaded.model[4].kernel_size == (3, 3)
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.eye(3)[:2]
    with torch.no_grad():
        assert torch.equal(loaded(x, c), net.eval()(x, c))


def test_g_is_updated_once_per_n_critic_steps(domain_dir):
    m, ds = build({"data.data": str(domain_dir)}, **{"loss.n_critic": 3})
    batch = default_collate([ds[(i, i, i)] for i in (0, 4, 8)])
    g0 = [p.detach().clone() for p in m.G.parameters()]
    for step in range(2):
        out = m.train_step(batch, step)
        assert "G_cls" not in out and "D_cls" in out and "D_adv" in out
    assert all(torch.equal(a, b) for a, b in zip(g0, m.G.parameters()))
    out = m.train_step(batch, 2)
    assert {"G_adv", "G_cls", "rec"} <= set(out)
    assert max(float((a - b).abs().max()) for a, b in zip(g0, (p.detach() for p in m.G.parameters()))) > 1e-5  # an Adam step of lr 1e-4


def test_classification_loss_falls_on_a_toy_problem(domain_dir):
    """Flat blue/green/red images: D's class head learns them within a few steps (lr raised for speed)."""
    m, ds = build({"data.data": str(domain_dir)}, **{"loss.n_critic": 100, "train.lr": 1e-3, "net.init": "kaiming"})
    batch = default_collate([ds[(i, i, i)] for i in range(0, 12, 2)])
    history = [float(m.train_step(batch, step)["D_cls"]) for step in range(8)]
    assert history[-1] < 0.75 * history[0], history
    with torch.no_grad():
        predicted = m.D.forward_with_classes(batch["a"])[1].argmax(1)
    assert torch.equal(predicted, batch["label"].argmax(1))


# ----- a toy task the method must learn

def test_stargan_learns_to_recolour_shapes(cli, tmp_path):
    """Grey images with red, green or blue shapes, one domain per colour. After 200 steps (about 20 s of
    CPU) translations to each other domain must be recognised as that domain by their mean colour (the
    nearest of the three domains' mean colours) at least 90% of the time; the identity scores 0%."""
    from img2img.data.io import list_images, load_image, pil_to_tensor
    from img2img.data.synthetic import make_domains

    data = make_domains(tmp_path / "data", count=16, size=32)
    run = tmp_path / "run"
    result = cli(["train", "stargan", "--data", data, "--out", run, "--steps", "200", "--batch-size", "8",
                  "--image-size", "32", "--load-size", "32", "--generator", "resnet_2", "--ngf", "16", "--ndf", "16",
                  "--lr", "5e-4", "--n-critic", "2", "--device", "cpu", "--seed", "0", "--sample-every", "0", "-q"])
    assert result.exit_code == 0, result.output
    mf = load_model(run / "model.pt")
    domains = mf.data["domains"]
    images = {d: torch.stack([pil_to_tensor(load_image(p)) for p in list_images(data / d)]) for d in domains}
    centres = torch.stack([images[d].mean(dim=(0, 2, 3)) for d in domains])
    for s, d in enumerate(domains):  # the check tells the domains apart: every real image gets its own
        assert torch.equal(torch.cdist(images[d].mean(dim=(2, 3)), centres).argmin(1), torch.full((16,), s))
    translators = dict(domain_translators(mf, "all", device="cpu"))
    hits = total = 0
    for source in domains:
        for t, target in enumerate(domains):
            if target == source:
                continue
            with torch.no_grad():
                y = translators[f"_{target}"](images[source])
            hits += int((torch.cdist(y.mean(dim=(2, 3)), centres).argmin(1) == t).sum())
            total += len(y)
    assert hits / total >= 0.9, f"{hits}/{total} translations have their target domain's colour"


# ----- CLI: train, model file, translate, resume

def test_train_translate_to_a_domain_and_to_all(cli, tmp_path, domain_dir):
    run = tmp_path / "run"
    result = cli(["train", "stargan", "--data", domain_dir, "--steps", "2", "--out", run, *FAST])
    assert result.exit_code == 0, result.output
    model = load(run / "model.pt")
    assert model["domains"] == ["blue", "green", "red"]
    assert model["directions"]["to:red"] == {"generator": "G", "cond": [0.0, 0.0, 1.0]}
    assert model["classifier"]["arch"]["n_classes"] == 3
    info = " ".join(cli(["info", run / "model.pt"]).output.split())  # rich wraps long rows
    assert "blue, green, red" in info
    for detail in ("norm instance_affine", "zero padding", "4x4 down/up convs", "3 label maps into a zero-padded first conv",
                   "4 stride-2 4x4 convs (8..64 wide)", "LeakyReLU 0.01", "3x3 real/fake head",
                   "2x2 class head over the whole map", "PyTorch default"):
        assert detail in info, detail

    src = domain_dir / "red"
    result = cli(["translate", run / "model.pt", src, "-o", tmp_path / "all", "--to", "all", "-q"])
    assert result.exit_code == 0, result.output
    expected = sorted(f"{p.stem}_{d}.png" for p in src.iterdir() for d in ("blue", "green", "red"))
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == expected
    # Each domain's output differs from the others' by a large share of the output's scale.
    outs = {d: read_images(sorted((tmp_path / "all").glob(f"*_{d}.png"))) for d in ("blue", "green", "red")}
    for d1, d2 in (("blue", "green"), ("green", "red"), ("red", "blue")):
        assert float((outs[d1] - outs[d2]).abs().mean() / outs[d1].abs().mean()) > 0.05, (d1, d2)
    result = cli(["translate", run / "model.pt", src / "red0.png", "-o", tmp_path / "one", "--to", "green", "-q"])
    assert result.exit_code == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["red0.png"]
    with Image.open(tmp_path / "one" / "red0.png") as img:
        assert img.size == (32, 32)
    # A single-file -o with --to all: one file per domain beside it.
    result = cli(["translate", run / "model.pt", src / "red0.png", "-o", tmp_path / "x" / "out.jpg", "--to", "all", "-q"])
    assert result.exit_code == 0 and sorted(p.name for p in (tmp_path / "x").iterdir()) == ["out_blue.jpg", "out_green.jpg", "out_red.jpg"]

    for args, message in ((["--to", "purple"], "unknown domain 'purple'"), ([], "give --to DOMAIN"),
                          (["--direction", "a2b"], "use --to DOMAIN"), (["--to", "red", "--direction", "a2b"], "do not go together")):
        result = cli(["translate", run / "model.pt", src, "-o", tmp_path / "bad", *args, "-q"])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_to_is_refused_for_two_way_models(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    run = tmp_path / "cg"
    assert cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", "1", "--out", run, *TINY_FLAGS, "--generator", "resnet_1"]).exit_code == 0
    result = cli(["translate", run / "model.pt", a, "-o", tmp_path / "o", "--to", "all", "-q"])
    assert result.exit_code == 2 and "use --direction instead" in result.output


def test_attribute_model_sets_some_attributes_and_keeps_the_rest(cli, tmp_path, attr_data):
    images, labels = attr_data
    run = tmp_path / "run"
    result = cli(["train", "stargan", "--images", images, "--labels", labels, "--attrs", "Red,Bright", "--steps", "2",
                  "--out", run, *FAST])
    assert result.exit_code == 0, result.output
    mf = load_model(run / "model.pt")
    assert mf.data["domains"] == ["Red", "Bright"] and list(mf.directions) == ["attributes"]

    x = torch.rand(2, 3, 40, 48) * 2 - 1  # not the training size: the classifier reads a resized copy
    (_, setter), = domain_translators(mf, "Bright=0", device="cpu")
    current = setter.current_attributes(x)
    cond = setter.condition(x)
    assert cond[:, 1].tolist() == [0.0, 0.0] and torch.equal(cond[:, 0], current[:, 0])
    flips = dict(domain_translators(mf, "all", device="cpu"))
    assert set(flips) == {"_Red", "_Bright"}
    assert torch.equal(flips["_Red"].condition(x)[:, 0], 1 - current[:, 0])
    assert torch.equal(flips["_Red"].condition(x)[:, 1], current[:, 1])
    assert isinstance(flips["_Red"], AttributeTranslator) and flips["_Red"].generator is flips["_Bright"].generator
    assert setter(x).shape == x.shape

    result = cli(["translate", run / "model.pt", images / "img0.png", "-o", tmp_path / "o", "--to", "Red=1,Bright=-1", "-q"])
    assert result.exit_code == 0 and (tmp_path / "o" / "img0.png").is_file()
    # Opposite attribute settings give translations far apart (the label reaches the output).
    for to, out in (("Red=1,Bright=0", "p"), ("Red=0,Bright=1", "q")):
        assert cli(["translate", run / "model.pt", images, "-o", tmp_path / out, "--to", to, "-q"]).exit_code == 0
    p, q = (read_images(sorted((tmp_path / d).iterdir())) for d in ("p", "q"))
    assert p.shape == (8, 3, 32, 32) and float((p - q).abs().mean() / p.abs().mean()) > 0.05
    result = cli(["translate", run / "model.pt", images, "-o", tmp_path / "all", "--to", "all", "-q"])
    assert result.exit_code == 0 and len(list((tmp_path / "all").iterdir())) == 16
    result = cli(["translate", run / "model.pt", images, "-o", tmp_path / "bad", "--to", "Blond=1", "-q"])
    assert result.exit_code == 2 and "unknown attribute 'Blond'" in result.output


def test_stop_and_resume_equals_uninterrupted(cli, tmp_path, domain_dir):
    flags = ["--data", domain_dir, "--steps", "6", *FAST]
    straight, parts = tmp_path / "straight", tmp_path / "parts"
    assert cli(["train", "stargan", *flags, "--out", straight]).exit_code == 0
    assert cli(["train", "stargan", *flags, "--stop-after", "3", "--out", parts]).exit_code == 0
    result = cli(["train", "stargan", "--resume", "--out", parts, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    ca, cb = load(straight / "checkpoint.pt"), load(parts / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 6
    for net, state in ca["method"]["nets"].items():
        for k, t in state.items():
            assert torch.equal(t, cb["method"]["nets"][net][k]), f"{net}.{k}"
    for group in ("generators", "classifier"):
        ma, mb = load(straight / "model.pt")[group], load(parts / "model.pt")[group]
        flat_a = ma["G"]["state_dict"] if group == "generators" else ma["state_dict"]
        flat_b = mb["G"]["state_dict"] if group == "generators" else mb["state_dict"]
        assert all(torch.equal(t, flat_b[k]) for k, t in flat_a.items())


def test_resume_refuses_changed_domains(cli, tmp_path, domain_dir):
    data = tmp_path / "data"
    shutil.copytree(domain_dir, data)
    run = tmp_path / "run"
    assert cli(["train", "stargan", "--data", data, "--steps", "2", "--stop-after", "1", "--out", run, *FAST]).exit_code == 0
    shutil.copytree(data / "red", data / "yellow")
    result = cli(["train", "stargan", "--resume", "--out", run, "-q"])
    assert result.exit_code == 2 and "resume with the same data" in result.output


def test_info_shows_domain_names_as_written_not_as_markup(tmp_path, cli):
    """Domain names come from folder names; '[red]' must be printed, not taken as a colour."""
    rng = np.random.default_rng(0)
    for name, colour in (("[red]", (200, 40, 40)), ("blue", (40, 40, 200))):
        (tmp_path / "d" / name).mkdir(parents=True)
        for n in range(3):
            noisy(colour, rng).save(tmp_path / "d" / name / f"{n}.png")
    run = tmp_path / "run"
    assert cli(["train", "stargan", "--data", tmp_path / "d", "--steps", "2", *FAST, "--out", run]).exit_code == 0
    result = cli(["info", run / "model.pt"])
    assert result.exit_code == 0, result.output
    assert "[red], blue" in result.output
