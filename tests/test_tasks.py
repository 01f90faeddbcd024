"""Property tests for every registered task (DeepInverse style: the registry is the list, so a
new task file is covered without touching this file), plus task-specific numeric checks."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

import tasks
from tasks._base import Operator
from tasks.cs import DENSE_MAX_N, DenseGaussianOperator, PartialCirculantOperator
from tasks.inpaint_box import box_size
from tasks.superres import bicubic_taps

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SHAPES = [(1, 32, 32), (3, 16, 16), (3, 64, 64)]  # 3x64x64: n = 12288 > DENSE_MAX_N, cs goes circulant


def cases() -> list:
    """(task name, level, image shape) for every task, default level and shape it accepts."""
    out = []
    for name in tasks.names():
        task = tasks.get(name)
        for shape in SHAPES:
            if name == "colorize" and shape[0] != 3:
                continue  # refused on grayscale: test_colorize_refuses_grayscale
            for level in task.default_levels:
                out.append(pytest.param(name, level, shape, id=f"{name}-{level}-{'x'.join(map(str, shape))}"))
    return out


CASES = cases()


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These ops are tiny; intra-op threads only add contention on shared CPUs (~40x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name: str, level: float, shape, seed: int = 0, device: str = "cpu", noise_sigma: float = 0.0) -> Operator:
    return tasks.get(name).build(level, shape, seed=seed, device=device, noise_sigma=noise_sigma)


def images(batch: int, shape, seed: int = 1, device: str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, *shape, generator=g) * 2 - 1).to(device)


def expected_count(name: str, level: float, shape) -> int | None:
    """The measurement count each task promises for ``level`` (None: task not listed here)."""
    c, h, w = shape
    if name == "inpaint":
        return round(level * h * w) * c
    if name == "inpaint_box":
        bh, bw = box_size(level, h, w)
        return (h * w - bh * bw) * c
    if name == "cs":
        return round(level * c * h * w)
    if name == "superres":
        return c * h * w // int(level) ** 2
    if name in ("denoise",):
        return c * h * w
    if name == "colorize":
        return h * w
    return None


# ------------------------------------------------------------------ registry and levels
@pytest.mark.parametrize("name", tasks.names())
def test_task_declaration(name):
    from bench.priors.catalog import get_world, prior_names

    task = tasks.get(name)
    assert task.name == name
    assert task.level_meaning and task.harder_when in ("lower", "higher")
    assert task.default_levels
    world_levels = [get_world(p).levels(name, task.default_levels, profile)
                    for p in prior_names() for profile in ("quick", "paper")]
    for levels in (task.default_levels, *world_levels):  # every world's levels are valid, hardest first
        for level in levels:
            assert task.validate_level(level) == float(level)
        ordered = sorted(levels, reverse=task.harder_when == "higher")
        assert list(levels) == ordered


@pytest.mark.parametrize("name", tasks.names())
@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_invalid_levels_raise(name, bad):
    task = tasks.get(name)
    with pytest.raises(ValueError, match=name):
        task.validate_level(bad)
    with pytest.raises(ValueError):
        task.build(bad, (3, 32, 32))


def test_specific_level_ranges():
    for name, bad in [("inpaint", 0.0), ("inpaint", 1.5), ("inpaint_box", 0.0), ("inpaint_box", 1.0),
                      ("cs", 0.0), ("cs", 1.01), ("superres", 2.5), ("superres", 0)]:
        with pytest.raises(ValueError):
            tasks.get(name).validate_level(bad)
    with pytest.raises(ValueError, match="no pixel"):
        build("inpaint", 1e-4, (1, 16, 16))  # rounds to zero observed pixels


# ------------------------------------------------------------------ generic properties
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,level,shape", CASES)
def test_shapes_and_count(name, level, shape, device):
    op = build(name, level, shape, device=device)
    y = op(images(2, shape, device=device))
    assert y.shape == (2, *op.measurement_shape) and y.device.type == device
    assert op.num_measurements == math.prod(op.measurement_shape)
    expected = expected_count(name, level, shape)
    if expected is None:
        pytest.skip(f"no expected measurement count for task {name!r}; add it to expected_count()")
    assert op.num_measurements == expected
    preview = op.preview(y)
    if preview is not None:
        assert preview.shape[0] == 2 and preview.shape[2:] == shape[1:]


@pytest.mark.parametrize("name,level,shape", CASES)
def test_deterministic_by_seed(name, level, shape):
    x = images(2, shape)
    state = torch.get_rng_state()
    a, b, c = (build(name, level, shape, seed=s)(x) for s in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), state), "building an operator touched the global RNG"
    assert torch.equal(a, b)
    if tasks.get(name).randomized:
        assert not torch.equal(a, c)
    else:
        assert torch.equal(a, c)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,level,shape", CASES)
def test_adjoint(name, level, shape, device):
    op = build(name, level, shape, device=device)
    if not op.linear:
        pytest.skip("nonlinear operator")
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, *shape, generator=g).to(device)
    y = torch.randn(3, *op.measurement_shape, generator=g).to(device)
    lhs = (op(x) * y).flatten(1).sum(1)
    rhs = (x * op.adjoint(y)).flatten(1).sum(1)
    scale = op(x).flatten(1).norm(dim=1) * y.flatten(1).norm(dim=1)
    assert op.adjoint(y).shape == x.shape
    assert torch.all((lhs - rhs).abs() <= 1e-5 * scale + 1e-6), (lhs, rhs)


@pytest.mark.parametrize("name,level,shape", CASES)
def test_gradients_flow(name, level, shape):
    op = build(name, level, shape)
    y = op(images(2, shape, seed=2))
    x = images(2, shape, seed=3).requires_grad_(True)
    op.loss(op(x), y).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name,level,shape", CASES)
def test_batch_consistency(name, level, shape):
    op = build(name, level, shape)
    x = images(3, shape)
    batched = op(x)
    atol = 1e-6 * max(1.0, batched.abs().max().item())  # FFT roundoff grows with the values
    for i in range(3):
        torch.testing.assert_close(batched[i:i + 1], op(x[i:i + 1]), rtol=1e-5, atol=atol)


@pytest.mark.parametrize("name,level,shape", CASES)
def test_noise_model(name, level, shape):
    sigma = 0.3
    op = build(name, level, shape, noise_sigma=sigma)
    assert op.noise_sigma >= sigma  # denoise/colorize add the level in quadrature
    batch = min(64, max(4, math.ceil(2000 / op.num_measurements)))  # >= ~2000 noise draws: std within ~5%
    x = images(batch, shape)
    gens = lambda seed: [torch.Generator().manual_seed(seed + i) for i in range(batch)]  # noqa: E731
    y1, y2, y3 = op.measure(x, gens(0)), op.measure(x, gens(0)), op.measure(x, gens(1000))
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    resid = y1 - op(x)
    assert abs(resid.std().item() / op.noise_sigma - 1) < 0.15
    assert abs(resid.mean().item()) < 0.1 * op.noise_sigma
    # image i's noise depends only on its own generator, not on its batch-mates
    torch.testing.assert_close(op.measure(x[1:2], [torch.Generator().manual_seed(1)]), y1[1:2])
    with pytest.raises(ValueError):
        op.measure(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,level,shape", CASES)
def test_same_operator_on_every_device(name, level, shape):
    x = images(2, shape)
    torch.testing.assert_close(build(name, level, shape, device="cuda")(x.cuda()).cpu(),
                               build(name, level, shape)(x), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ task-specific
def test_inpaint_mask_and_preview():
    op = build("inpaint", 0.1, (3, 16, 16), seed=7)
    assert int(op.mask.sum()) == round(0.1 * 256)
    x = images(1, (3, 16, 16))
    prev = op.preview(op(x))
    obs = op.mask.expand_as(x[0])
    assert torch.equal(prev[0][obs], x[0][obs]) and torch.all(prev[0][~obs] == 0)  # unobserved: grey


def test_inpaint_box_is_one_rectangle_inside():
    for seed in range(5):
        op = build("inpaint_box", 0.25, (3, 20, 30), seed=seed)
        hidden = (~op.mask).nonzero()
        (top, left), (bottom, right) = hidden.min(0).values.tolist(), hidden.max(0).values.tolist()
        assert (bottom - top + 1, right - left + 1) == (10, 15) and hidden.shape[0] == 150


def test_cs_kind_selection():
    cs = tasks.get("cs")
    assert isinstance(cs.build(0.1, (1, 64, 64)), DenseGaussianOperator)  # n = 4096 = DENSE_MAX_N
    assert isinstance(cs.build(0.1, (3, 64, 64)), PartialCirculantOperator)
    assert isinstance(dataclasses.replace(cs, kind="circulant").build(0.1, (1, 8, 8)), PartialCirculantOperator)
    assert isinstance(dataclasses.replace(cs, kind="dense").build(0.1, (1, 8, 8)), DenseGaussianOperator)
    with pytest.raises(ValueError, match="kind"):
        dataclasses.replace(cs, kind="fourier").build(0.1, (1, 8, 8))
    assert DENSE_MAX_N == 4096


def test_cs_dense_statistics():
    op = build("cs", 0.25, (1, 32, 32))
    assert op.matrix.shape == (256, 1024)
    assert abs(op.matrix.var().item() * 256 - 1) < 0.02


@pytest.mark.parametrize("shape", [(1, 2, 3), (2, 3, 3)])
def test_circulant_equals_brute_force_matrix(shape):
    op = dataclasses.replace(tasks.get("cs"), kind="circulant").build(0.5, shape, seed=11)
    n = math.prod(shape)
    f, s, omega = op.filt.double(), op.signs.double(), op.indices
    circ = torch.tensor([[f[(i - j) % n].item() for j in range(n)] for i in range(n)], dtype=torch.float64)
    a = circ[omega] * s / math.sqrt(omega.numel())  # P_Omega C diag(s) / sqrt(m)
    assert omega.numel() == round(0.5 * n) and omega.unique().numel() == omega.numel()
    assert set(s.tolist()) <= {-1.0, 1.0}
    x = torch.randn(4, *shape, dtype=torch.float64)
    y = torch.randn(4, omega.numel(), dtype=torch.float64)
    torch.testing.assert_close(op(x.float()).double(), x.flatten(1) @ a.T, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(op.adjoint(y.float()).double().flatten(1), y @ a, rtol=1e-5, atol=1e-5)
    # not SGILO's elementwise "circulant" (s * x * f)[Omega]
    assert not torch.allclose(op(x.float()).double(), (s * x.flatten(1) * f)[:, omega] / math.sqrt(omega.numel()))


def ilo_bicubic_downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """A literal port of ILO's BicubicDownSample.forward (F.pad reflect + strided grouped conv)."""
    c = x.shape[1]
    k = bicubic_taps(factor)
    size = 4 * factor
    pad = size - factor
    x = F.pad(x, (0, 0, pad // 2, pad - pad // 2), "reflect")
    x = F.conv2d(x, k.view(1, 1, size, 1).repeat(c, 1, 1, 1), stride=(factor, 1), groups=c)
    x = F.pad(x, (pad // 2, pad - pad // 2, 0, 0), "reflect")
    return F.conv2d(x, k.view(1, 1, 1, size).repeat(c, 1, 1, 1), stride=(1, factor), groups=c)


@pytest.mark.parametrize("factor,shape", [(1, (3, 8, 8)), (2, (3, 16, 16)), (4, (1, 32, 32)), (16, (3, 32, 32))])
def test_superres_matches_ilo(factor, shape):
    op = build("superres", factor, shape)
    x = images(2, shape)
    torch.testing.assert_close(op(x), ilo_bicubic_downsample(x, factor), rtol=1e-6, atol=1e-6)


def test_superres_taps_and_constant():
    torch.testing.assert_close(bicubic_taps(1), torch.tensor([-1.0, 9.0, 9.0, -1.0]) / 16)
    for factor in (2, 4, 8):
        taps = bicubic_taps(factor)
        assert taps.numel() == 4 * factor and torch.allclose(taps, taps.flip(0)) and abs(taps.sum() - 1) < 1e-6
        op = build("superres", factor, (3, 32, 32))
        y = op(torch.full((1, 3, 32, 32), 0.37))
        torch.testing.assert_close(y, torch.full_like(y, 0.37))
        assert op.preview(y).shape == (1, 3, 32, 32)


def test_superres_adjoint_matches_autograd():
    op = build("superres", 4, (2, 32, 16))
    y = torch.randn(3, 2, 8, 4)
    _, vjp = torch.func.vjp(op.forward, torch.zeros(3, 2, 32, 16))
    torch.testing.assert_close(op.adjoint(y), vjp(y)[0], rtol=1e-5, atol=1e-6)


def test_superres_factor_must_fit():
    with pytest.raises(ValueError, match="divide"):
        build("superres", 3, (3, 32, 32))
    with pytest.raises(ValueError, match="too large"):
        build("superres", 32, (3, 32, 32))


def test_colorize_refuses_grayscale():
    with pytest.raises(ValueError, match="RGB"):
        build("colorize", 0.0, (1, 32, 32))


def test_colorize_weights():
    op = build("colorize", 0.0, (3, 4, 4))
    x = torch.zeros(1, 3, 4, 4)
    x[:, 1] = 1.0
    assert op(x).shape == (1, 1, 4, 4) and torch.allclose(op(x), torch.full((1, 1, 4, 4), 0.5870))
    assert op.preview(op(x)).shape == (1, 3, 4, 4)


def test_denoise_sigma_is_the_level():
    assert build("denoise", 0.1, (1, 8, 8)).noise_sigma == pytest.approx(0.1)
    assert build("denoise", 0.3, (1, 8, 8), noise_sigma=0.4).noise_sigma == pytest.approx(0.5)
    x = images(2, (1, 8, 8))
    assert torch.equal(build("denoise", 0.1, (1, 8, 8))(x), x)
