"""NVIDIA stylegan2-ada-pytorch generators: safe reading, conversion, and layer-for-layer equality.

``nv_*`` below is an independent re-implementation of the forward semantics of
stylegan2-ada-pytorch (``training/networks.py``: modulated_conv2d, FullyConnectedLayer,
SynthesisLayer, ToRGBLayer, SynthesisBlock 'skip'; ``torch_utils/ops``: conv2d_resample,
upfirdn2d reference path, bias_act reference path), with SGILO's modified
``SynthesisNetwork.forward(ws, layer_in, start_layer, end_layer)`` and NVIDIA parameter names.
It was written from a reading of those sources (not from memory), keeping their padding
arithmetic and weight-flip flags literally, so the question "does the up-sampling conv weight
need a spatial flip?" is decided by the comparison, not assumed.
"""
from __future__ import annotations

import collections
import json
import math
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.priors.checkpoint import check_state_dict, load_generator, load_state_dict_strict
from bench.priors.nvidia import (
    NvidiaFormatError,
    Stub,
    _check_kwargs,
    load_nvidia_generator,
    main,
    nvidia_to_rosinality,
    read_nvidia,
    safe_unpickle,
)
from bench.priors.stylegan2 import Generator

REF = Path(__file__).resolve().parent / "reference"  # copies of ../shared/reference facts
SQRT2 = math.sqrt(2)
SMALL = dict(img_resolution=32, channel_base=256, channel_max=32, w_dim=16, n_mlp=2, img_channels=3)
# float64 comparisons. rosinality adds the demodulation eps (1e-8) to the squared weight *after*
# the 1/sqrt(in*k*k) gain, NVIDIA before it: an effective eps ratio of in*k*k, worth ~1e-8 here
# (relative ~0.5e-8 * in*k*k / sum (W s)^2 in general). With the eps aligned the match is exact.
TOL = dict(rtol=1e-6, atol=1e-6)
EXACT = dict(rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- NVIDIA reference
def nv_setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    f = torch.tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def nv_upfirdn2d(x, f, up=1, pad=(0, 0, 0, 0), gain=1.0):
    """Zero-insert by ``up``, pad [x0, x1, y0, y1] (negative crops), convolve (flip_filter=False)."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    px0, px1, py0, py1 = pad
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip([0, 1])
    return F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)


def nv_conv2d_resample(x, w, f=None, up=1, padding=0, groups=1, flip_weight=True):
    """conv2d_resample for down == 1: the up > 1 'transposed conv' fast path, else plain conv."""
    out_ch, in_per_group, kh, kw = w.shape
    fw = fh = 1 if f is None else f.shape[-1]
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        wrapper_flip = not flip_weight  # the wrapper flips the weight when *its* flag is False
        wt = wt if wrapper_flip else wt.flip([2, 3])
        x = F.conv_transpose2d(x, wt, stride=up, padding=[pyt, pxt], groups=groups)
        return nv_upfirdn2d(x, f, pad=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up**2)
    assert px0 == px1 == py0 == py1 >= 0
    return F.conv2d(x, w if flip_weight else w.flip([2, 3]), padding=[py0, px0], groups=groups)


def nv_modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, f=None, demodulate=True,
                        flip_weight=True, fused=True, rosinality_eps=False):
    """``rosinality_eps``: scale the 1e-8 as rosinality effectively does (its eps meets the weight
    *after* the 1/sqrt(in*k*k) gain, NVIDIA's before), to show it is the only difference."""
    b = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(b, 1, -1, 1, 1)
    eps = 1e-8 * (in_ch * kh * kw if rosinality_eps else 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + eps).rsqrt() if demodulate else None
    if not fused:
        x = x * styles.reshape(b, -1, 1, 1)
        x = nv_conv2d_resample(x, weight, f, up=up, padding=padding, flip_weight=flip_weight)
        if demodulate:
            x = x * dcoefs.reshape(b, -1, 1, 1)
        return x if noise is None else x + noise
    if demodulate:
        w = w * dcoefs.reshape(b, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    x = nv_conv2d_resample(x, w.reshape(-1, in_ch, kh, kw), f, up=up, padding=padding, groups=b,
                           flip_weight=flip_weight)
    x = x.reshape(b, -1, *x.shape[2:])
    return x if noise is None else x + noise


def nv_bias_act(x, b, act="linear", clamp=None):
    x = x + b.reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2) * SQRT2
    return x if clamp is None else x.clamp(-clamp, clamp)


def nv_fc(P, name, x, act="linear", lr=1.0):
    w = P[f"{name}.weight"] * (lr / math.sqrt(P[f"{name}.weight"].shape[1]))
    return nv_bias_act(x @ w.t(), P[f"{name}.bias"] * lr, act)


def nv_mapping(P, z, n_mlp):
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for i in range(n_mlp):
        x = nv_fc(P, f"mapping.fc{i}", x, "lrelu", lr=0.01)
    return x


def nv_layer(P, name, x, w, up, fused, noise_mode="const", clamp=None, rosinality_eps=False):
    styles = nv_fc(P, f"{name}.affine", w)
    noise = P[f"{name}.noise_const"] * P[f"{name}.noise_strength"] if noise_mode == "const" else None
    x = nv_modulated_conv2d(x, P[f"{name}.weight"], styles, noise, up=up, padding=1, f=P[f"{name}.resample_filter"],
                            flip_weight=(up == 1), fused=fused, rosinality_eps=rosinality_eps)
    return nv_bias_act(x, P[f"{name}.bias"], "lrelu", clamp)


def nv_torgb(P, name, x, w, fused, clamp=None):
    weight = P[f"{name}.weight"]
    styles = nv_fc(P, f"{name}.affine", w) * (1 / math.sqrt(weight.shape[1] * weight.shape[2] * weight.shape[3]))
    x = nv_modulated_conv2d(x, weight, styles, demodulate=False, fused=fused)
    return nv_bias_act(x, P[f"{name}.bias"], clamp=clamp)


def nv_block(P, res, x, img, ws, fused, clamp=None, rosinality_eps=False):
    b = f"synthesis.b{res}"
    it = iter(ws.unbind(dim=1))
    kw = dict(clamp=clamp, rosinality_eps=rosinality_eps)
    if res == 4:
        x = P[f"{b}.const"].unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        x = nv_layer(P, f"{b}.conv1", x, next(it), 1, fused, **kw)
    else:
        x = nv_layer(P, f"{b}.conv0", x, next(it), 2, fused, **kw)
        x = nv_layer(P, f"{b}.conv1", x, next(it), 1, fused, **kw)
    if img is not None:  # upfirdn2d.upsample2d: padding [(fw+1)//2, (fw-2)//2] per axis, gain 4
        f = P[f"{b}.resample_filter"]
        img = nv_upfirdn2d(img, f, up=2, pad=(2, 1, 2, 1), gain=4)
    y = nv_torgb(P, f"{b}.torgb", x, next(it), fused, clamp)
    return x, (y if img is None else img + y)


def nv_synthesis(P, ws, layer_in=None, start_layer=0, end_layer=16, fused=True, clamp=None, rosinality_eps=False):
    """SGILO's SynthesisNetwork.forward: block ``end_layer``'s x, else the image."""
    resolutions = sorted(int(k.split(".")[1][1:]) for k in P if k.endswith(".torgb.weight"))
    block_ws, w_idx = [], 0
    for res in resolutions:
        n_conv = 1 if res == 4 else 2
        block_ws.append(ws.narrow(1, w_idx, n_conv + 1))
        w_idx += n_conv
    x, img, index = layer_in, None, start_layer
    for res, cur in zip(resolutions[start_layer:], block_ws[start_layer:]):
        x, img = nv_block(P, res, x, img, cur, fused, clamp, rosinality_eps)
        if index == end_layer:
            return x
        index += 1
    return img


def nvidia_params(img_resolution=32, channel_base=256, channel_max=32, w_dim=16, n_mlp=2, img_channels=3,
                  seed=0, empty=False) -> dict[str, torch.Tensor]:
    """Random G_ema state dict in NVIDIA's names, shapes and registration order.

    Biases, noise strengths and affine biases are non-zero and non-symmetric 3x3 kernels are
    random, so a missed offset, flip or transpose changes the output. ``empty``: shapes only.
    """
    g = torch.Generator().manual_seed(seed)
    new = (lambda *s: torch.empty(s, device="meta")) if empty else (lambda *s: torch.randn(s, generator=g))
    P: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        P[f"mapping.fc{i}.weight"] = new(w_dim, w_dim) / 0.01
        P[f"mapping.fc{i}.bias"] = new(w_dim) * 20
    P["mapping.w_avg"] = new(w_dim)
    ch = {r: min(channel_base // r, channel_max) for r in [2**i for i in range(2, int(math.log2(img_resolution)) + 1)]}
    filt = torch.empty(4, 4, device="meta") if empty else nv_setup_filter()

    def layer(name, cin, cout, res):
        P[f"{name}.affine.weight"] = new(cin, w_dim)
        P[f"{name}.affine.bias"] = 1 + 0.3 * new(cin)
        P[f"{name}.weight"] = new(cout, cin, 3, 3)
        P[f"{name}.noise_strength"] = 0.5 * new()
        P[f"{name}.bias"] = 0.2 * new(cout)
        P[f"{name}.resample_filter"] = filt.clone()
        P[f"{name}.noise_const"] = new(res, res)

    for res, cout in ch.items():
        b = f"synthesis.b{res}"
        if res == 4:
            P[f"{b}.const"] = new(cout, 4, 4)
        else:
            layer(f"{b}.conv0", ch[res // 2], cout, res)
        layer(f"{b}.conv1", cout, cout, res)
        P[f"{b}.torgb.affine.weight"] = new(cout, w_dim)
        P[f"{b}.torgb.affine.bias"] = 1 + 0.3 * new(cout)
        P[f"{b}.torgb.weight"] = new(img_channels, cout, 1, 1)
        P[f"{b}.torgb.bias"] = 0.2 * new(img_channels)
        P[f"{b}.resample_filter"] = filt.clone()
    return P


def convert(P) -> tuple[Generator, torch.Tensor]:
    rsd, cfg, w_avg = nvidia_to_rosinality(P)
    return load_state_dict_strict(Generator(**cfg), rsd).eval(), w_avg


@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(1)
    P = nvidia_params(**SMALL)
    g, _ = convert(P)
    return {k: v.double() for k, v in P.items()}, g.double()


def _ws(g: Generator, batch=2, seed=1) -> torch.Tensor:
    return torch.randn(batch, g.n_latent, g.style_dim, generator=torch.Generator().manual_seed(seed)).double()


# ----------------------------------------------------------------------------- numerical equality
@pytest.mark.parametrize("rosinality_eps", [False, True])
@pytest.mark.parametrize("fused", [True, False])
def test_every_layer_and_image_match_nvidia(pair, fused, rosinality_eps):
    """Block k's x is our layer-k features; the images agree. Exact up to the demodulation eps."""
    P, g = pair
    w = _ws(g)
    noises = g.stored_noises(w.shape[0])  # = NVIDIA noise_mode='const'
    tol = EXACT if rosinality_eps else TOL
    for k in range(g.last_layer + 1):
        ours = g.split(w, noises, k).features
        theirs = nv_synthesis(P, w, end_layer=k, fused=fused, rosinality_eps=rosinality_eps)
        assert ours.shape == theirs.shape == (2, *g.layer_shape(k))
        torch.testing.assert_close(ours, theirs, **tol, msg=f"layer {k}")
    image = nv_synthesis(P, w, fused=fused, rosinality_eps=rosinality_eps)
    torch.testing.assert_close(g.synthesis(w, noises).skip, image, **tol)


def test_official_restart_matches_sgilo(pair):
    """SGILO restarts at start_layer = k+1 from layer_in with an empty RGB sum."""
    P, g = pair
    w = _ws(g, seed=2)
    noises = g.stored_noises(2)
    for k in range(g.last_layer):
        state = g.split(w, noises, k)
        layer_in = state.features + 0.1 * torch.randn_like(state.features)  # an optimised, off-manifold input
        state.features = layer_in
        ours = g.resume(state, w, noises, skip_mode="official")
        theirs = nv_synthesis(P, w, layer_in=layer_in, start_layer=k + 1)
        torch.testing.assert_close(ours, theirs, **TOL, msg=f"restart after layer {k}")


def test_sgilo_per_sample_noise_batch1(pair):
    """SGILO swaps noise_const for randn([bs,res,res]); with bs = 1 that is our [1,1,res,res] list."""
    P, g = pair
    w = _ws(g, batch=1, seed=3)
    noises = g.make_noise(1, generator=torch.Generator().manual_seed(4))
    P2 = dict(P)
    names = [k for k in P if k.endswith("noise_const")]  # registration order = our noise indices
    assert len(names) == g.num_layers
    for name, n in zip(names, noises):
        P2[name] = n[:, 0].double()
    torch.testing.assert_close(g.split(w, [n.double() for n in noises], 2).features,
                               nv_synthesis(P2, w, end_layer=2), **TOL)


def test_mapping_and_w_avg(pair):
    P, g = pair
    z = torch.randn(5, g.style_dim, dtype=torch.float64)
    torch.testing.assert_close(g.style(z), nv_mapping(P, z, g.n_mlp), **TOL)
    _, w_avg = convert(nvidia_params(**SMALL))
    torch.testing.assert_close(w_avg, nvidia_params(**SMALL)["mapping.w_avg"])


@pytest.mark.parametrize("tamper", ["flip_up_weights", "affine_bias_plus_1", "flip_all_weights"])
def test_reference_detects_wrong_conversions(pair, tamper):
    """The comparison is sensitive to exactly the conventions in question (flip, +1 bias)."""
    P, g = pair
    w = _ws(g)
    rsd = {k: v.clone() for k, v in g.state_dict().items()}
    for k in rsd:
        if tamper == "flip_up_weights" and k.endswith("conv.weight") and k.startswith("convs.") and int(k.split(".")[1]) % 2 == 0:
            rsd[k] = rsd[k].flip([3, 4])
        if tamper == "flip_all_weights" and k.endswith("conv.weight") and ".to_rgb" not in k and not k.startswith("to_rgb"):
            rsd[k] = rsd[k].flip([3, 4])
        if tamper == "affine_bias_plus_1" and k.endswith("modulation.bias"):
            rsd[k] = rsd[k] + 1
    bad = Generator(**{**_cfg(g)}).double()
    bad.load_state_dict(rsd)
    noises = bad.stored_noises(2)
    assert not torch.allclose(bad.synthesis(w, noises).skip, nv_synthesis(P, w), atol=1e-4)


def _cfg(g: Generator) -> dict:
    return dict(size=g.size, style_dim=g.style_dim, n_mlp=g.n_mlp, channels=g.channels, img_channels=g.img_channels)


# ----------------------------------------------------------------------------- 1024 FFHQ layout
def test_ffhq_1024_key_mapping_matches_rosinality_manifest():
    """config-f shapes (channel_base 32768, max 512, 8 mapping layers) -> rosinality's 171 keys."""
    P = nvidia_params(img_resolution=1024, channel_base=32768, channel_max=512, w_dim=512, n_mlp=8, empty=True)
    assert len([k for k in P if k.endswith("noise_const")]) == 17
    rsd, cfg, _ = nvidia_to_rosinality(P)
    assert cfg["size"] == 1024 and cfg["channels"] == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256,
                                                        256: 128, 512: 64, 1024: 32}
    with torch.device("meta"):
        g = Generator(**cfg)
    check_state_dict(g, rsd)
    assert set(rsd) == set(g.state_dict())
    manifest = REF / "rosinality_g_ema_1024_manifest.json"
    if manifest.exists():
        ref = {e["key"]: e["shape"] for e in json.loads(manifest.read_text())}
        assert {k: list(v.shape) for k, v in rsd.items()} == ref
    assert [g.layer_shape(k) for k in range(3)] == [(512, 4, 4), (512, 8, 8), (512, 16, 16)]


# ----------------------------------------------------------------------------- safe reading
EVIL_SRC = "open({marker!r}, 'w').write('executed')\nraise RuntimeError('module_src was executed')\n"


class _EasyDict(dict):
    """Pickled by reference as dnnlib.util.EasyDict (resolvable only while write_fake_pkl runs)."""

    __module__ = "dnnlib.util"
    __qualname__ = "EasyDict"


class _Evil:
    """Reduces to a call of os.system: a real loader would run it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _FakeModule:
    """Pickles exactly like a stylegan2-ada persistent module: _reconstruct_persistent_obj(meta)."""

    reconstruct = None  # set to the fake torch_utils.persistence function while pickling

    def __init__(self, class_name: str, state: dict, src: str):
        self.class_name, self.state, self.src = class_name, state, src

    def __reduce__(self):
        meta = dict(type="class", version=6, module_src=self.src, class_name=self.class_name, state=self.state)
        return (_FakeModule.reconstruct, (meta,), None)


def _fake_tree(P: dict[str, torch.Tensor], src: str) -> _FakeModule:
    """nn.Module-like __dict__ tree holding P (parameters as nn.Parameter, buffers as tensors)."""
    def node(class_name):
        return {"training": False, "_parameters": collections.OrderedDict(), "_buffers": collections.OrderedDict(),
                "_non_persistent_buffers_set": set(), "_backward_hooks": collections.OrderedDict(),
                "_forward_hooks": collections.OrderedDict(), "_modules": collections.OrderedDict(),
                "_init_args": (), "_init_kwargs": _EasyDict(), "weight_gain": np.float64(0.25), "class": class_name}

    root = node("Generator")
    for key, t in P.items():
        *path, leaf = key.split(".")
        st = root
        for part in path:
            st = st["_modules"].setdefault(part, node(part))
        if leaf in ("noise_const", "resample_filter", "w_avg"):
            st["_buffers"][leaf] = t.clone()
        else:
            st["_parameters"][leaf] = torch.nn.Parameter(t.clone())
    root["_parameters"]["unused_bias"] = None  # e.g. FullyConnectedLayer(bias=False)
    root["_buffers"]["scratch"] = torch.zeros(1)
    root["_non_persistent_buffers_set"].add("scratch")
    root["_init_kwargs"] = _EasyDict(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3,
                                     mapping_kwargs=_EasyDict(num_layers=2, lr_multiplier=np.float64(0.01)),
                                     synthesis_kwargs=_EasyDict(channel_base=256, channel_max=32, num_fp16_res=0,
                                                                conv_clamp=None, architecture="skip"))

    def wrap(st):
        st["_modules"] = collections.OrderedDict((k, wrap(v)) for k, v in st["_modules"].items())
        return _FakeModule(st.pop("class"), st, src)

    return wrap(root)


def write_fake_pkl(path: Path, P: dict[str, torch.Tensor], marker: Path, monkeypatch, extra: dict | None = None) -> None:
    """A stylegan2-ada-like network pickle, written with stand-in torch_utils/dnnlib modules."""
    tu, tup = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    dn, dnu = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called: only its name goes into the pickle
        raise AssertionError("the stand-in reconstruct function must not run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    tup._reconstruct_persistent_obj = _reconstruct_persistent_obj
    tu.persistence = tup
    dnu.EasyDict = _EasyDict
    dn.util = dnu
    with monkeypatch.context() as mp:
        for name, mod in [("torch_utils", tu), ("torch_utils.persistence", tup), ("dnnlib", dn), ("dnnlib.util", dnu)]:
            mp.setitem(sys.modules, name, mod)
        mp.setattr(_FakeModule, "reconstruct", _reconstruct_persistent_obj)
        src = EVIL_SRC.format(marker=str(marker))
        data = {"G": _fake_tree(P, src), "D": _FakeModule("Discriminator", {"_modules": {}}, src),
                "G_ema": _fake_tree(P, src), "augment_pipe": None,
                "training_set_kwargs": _EasyDict(path="ffhq.zip", resolution=32), **(extra or {})}
        path.write_bytes(pickle.dumps(data, protocol=4))


def test_fake_pkl_loads_without_running_code(tmp_path, monkeypatch, pair):
    P = nvidia_params(**SMALL)
    marker, marker2 = tmp_path / "src_ran", tmp_path / "reduce_ran"
    pkl = tmp_path / "ffhq.pkl"
    write_fake_pkl(pkl, P, marker, monkeypatch, extra={"evil": _Evil(marker2)})
    assert b"torch_utils.persistence" in pkl.read_bytes() and b"module_src" in pkl.read_bytes()
    before = set(sys.modules)
    sd, info = read_nvidia(pkl)
    g, extras = load_nvidia_generator(pkl)
    assert not marker.exists() and not marker2.exists()
    assert not {m for m in set(sys.modules) - before if m.startswith(("_imported_module_", "torch_utils", "dnnlib"))}
    assert sd.keys() == P.keys() and all(torch.equal(sd[k], P[k]) for k in P)
    assert info["class_name"] == "Generator" and extras["format"] == "pickle"
    assert extras["init_kwargs"]["mapping_kwargs"]["lr_multiplier"] == 0.01  # numpy scalar decoded
    assert extras["warnings"] == []
    torch.testing.assert_close(extras["latent_avg"], P["mapping.w_avg"])
    _, g_ref = pair
    for (k, a), (_, b) in zip(g.state_dict().items(), g_ref.state_dict().items()):
        torch.testing.assert_close(a.double(), b, msg=k)


def test_unknown_globals_become_inert_stubs(tmp_path):
    marker = tmp_path / "ran"
    obj = safe_unpickle(pickle.dumps({"a": _Evil(marker), "b": [print, eval]}, protocol=4))
    assert not marker.exists()
    assert type(obj["a"]).__name__ == "system" and obj["a"].args == (f"touch {marker}",)
    assert [x.__name__ for x in obj["b"]] == ["print", "eval"]
    assert all(isinstance(x, type) and issubclass(x, Stub) for x in obj["b"])  # inert classes, not the builtins


@pytest.mark.parametrize("zipped", [True, False])
def test_plain_state_dict_pt(tmp_path, zipped, pair):
    """SGILO's eval_score_based.py loads G.state_dict() saved as ffhq.pt."""
    P = nvidia_params(**SMALL)
    path = tmp_path / "ffhq.pt"
    torch.save(P, path, _use_new_zipfile_serialization=zipped)
    g, extras = load_nvidia_generator(path)
    assert extras["format"] == "state_dict"
    _, g_ref = pair
    torch.testing.assert_close(g.double().state_dict()["convs.0.conv.weight"], g_ref.state_dict()["convs.0.conv.weight"])


def test_cli_convert_writes_rosinality_checkpoint(tmp_path, monkeypatch, pair):
    P = nvidia_params(**SMALL)
    pkl, out = tmp_path / "ffhq.pkl", tmp_path / "out" / "g.pt"
    write_fake_pkl(pkl, P, tmp_path / "ran", monkeypatch)
    assert main(["convert", str(pkl), str(out)]) == 0
    g, rest = load_generator(out)
    torch.testing.assert_close(rest["latent_avg"], P["mapping.w_avg"])
    P64, g_ref = pair
    w = _ws(g_ref)
    torch.testing.assert_close(g.double().split(w, g_ref.stored_noises(2), 2).features,
                               nv_synthesis(P64, w, end_layer=2), **TOL)


def test_errors_name_the_problem(tmp_path):
    P = nvidia_params(**SMALL)
    with pytest.raises(NvidiaFormatError, match="unexpected keys.*synthesis.b8.extra"):
        nvidia_to_rosinality({**P, "synthesis.b8.extra": torch.zeros(1)})
    bad = dict(P)
    del bad["synthesis.b16.conv0.noise_strength"]
    with pytest.raises(NvidiaFormatError, match="synthesis.b16.conv0.noise_strength"):
        nvidia_to_rosinality(bad)
    syn = tmp_path / "syn.pt"
    torch.save({k[len("synthesis."):]: v for k, v in P.items() if k.startswith("synthesis.")}, syn)
    with pytest.raises(NvidiaFormatError, match="only the synthesis network"):
        read_nvidia(syn)
    with pytest.raises(NvidiaFormatError, match="resnet"):
        nvidia_to_rosinality({**P, "synthesis.b8.skip.weight": torch.zeros(32, 32, 1, 1)})
    # a mis-shaped tensor is named by its NVIDIA key too, not only by the converted (rosinality) one
    shaped = dict(P)
    shaped["synthesis.b16.conv0.affine.bias"] = torch.zeros(shaped["synthesis.b16.conv0.affine.bias"].numel() + 1)
    torch.save(shaped, tmp_path / "shaped.pt")
    with pytest.raises(NvidiaFormatError, match=r"convs.2.conv.modulation.bias \(NVIDIA synthesis.b16.conv0.affine.bias\)"):
        load_nvidia_generator(tmp_path / "shaped.pt")


def test_convert_cli_on_a_bad_file_exits_2_with_a_message(tmp_path, capsys):
    from bench.priors.nvidia import main

    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04not really a pickle")
    assert main(["convert", str(tmp_path / "bad.pkl"), str(tmp_path / "out.pt")]) == 2
    err = capsys.readouterr().err
    assert "bad.pkl" in err and "Traceback" not in err and not (tmp_path / "out.pt").exists()


def test_init_kwargs_checks():
    assert _check_kwargs({}) == []
    notes = _check_kwargs({"synthesis_kwargs": {"conv_clamp": 256, "num_fp16_res": 4}})
    assert len(notes) == 2 and "conv_clamp = 256" in notes[0]
    with pytest.raises(NvidiaFormatError, match="lr_multiplier"):
        _check_kwargs({"mapping_kwargs": {"lr_multiplier": 0.1}})
    with pytest.raises(NvidiaFormatError, match="c_dim"):
        _check_kwargs({"c_dim": 10})
