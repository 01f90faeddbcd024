"""NVIDIA stylegan2-ada-pytorch generators (``ffhq.pkl``, ``ffhq.pt``) as our rosinality-layout Generator.

SGILO uses NVIDIA's networks, not rosinality's (the official SGILO code). This module reads their files
*without running any code from them* and converts the weights, so that our layer-k tensors
are the tensors the official score models were trained on.

Reading. A stylegan2-ada ``.pkl`` is a plain pickle whose modules are reduced by
``torch_utils.persistence`` to ``_reconstruct_persistent_obj(meta)``, ``meta`` holding the
module *source code* (``module_src``, which the real loader ``exec``s) and the object state
(``meta['state']``, the module ``__dict__``). :class:`SafeUnpickler` resolves only torch's
tensor-rebuild functions and plain containers; every other global becomes an inert stub, and
the persistence function returns ``meta['state']`` untouched, so ``module_src`` is never run.
Storages come through ``torch.storage._load_from_bytes``, replaced here by
``torch.load(..., weights_only=True)`` (torch's own version uses ``weights_only=False``).
A ``.pt`` state dict with NVIDIA key names (SGILO's ``eval_score_based.py`` loads one) is read
with ``torch.load(weights_only=True)``.

Conversion (NVIDIA -> rosinality; every tensor is copied as is, only reshaped):

=====================================  =====================================================
``mapping.fc{i}.weight|bias``          ``style.{i+1}.weight|bias`` (same lr_mul/sqrt(in) and
                                       lr_mul run-time gains on both sides)
``mapping.w_avg``                      ``latent_avg`` (outside the state dict)
``synthesis.b4.const`` [C,4,4]         ``input.input`` [1,C,4,4]
``synthesis.b4.conv1.*``               ``conv1.*``, noise_const -> ``noises.noise_0``
``synthesis.b4.torgb.*``               ``to_rgb1.*``
``synthesis.b{R}.conv0.*`` (j=log2R-2) ``convs.{2j-2}.*``, noise_const -> ``noises.noise_{2j-1}``
``synthesis.b{R}.conv1.*``             ``convs.{2j-1}.*``, noise_const -> ``noises.noise_{2j}``
``synthesis.b{R}.torgb.*``             ``to_rgbs.{j-1}.*``
``<conv>.weight`` [O,I,k,k]            ``<conv>.conv.weight`` [1,O,I,k,k]
``<conv>.affine.weight|bias``          ``<conv>.conv.modulation.weight|bias`` (no +1: NVIDIA's
                                       PyTorch affine is initialised at 1 and stored as used;
                                       the +1 of TF checkpoints is added by NVIDIA's legacy.py)
``<conv>.noise_strength`` []           ``<conv>.noise.weight`` [1]
``<conv>.bias`` [O]                    ``<conv>.activate.bias`` [O]
``<torgb>.bias`` [C]                   ``<torgb>.bias`` [1,C,1,1]
``*.resample_filter`` [4,4] (sum 1)    ``blur.kernel`` / ``upsample.kernel`` = filter * 4
=====================================  =====================================================

No spatial flip of the up-sampling conv weights: NVIDIA's ``conv2d_resample(up=2)`` runs a
stride-2 ``conv_transpose2d`` with the weight unflipped (``flip_weight=False`` becomes
``not flip_weight`` in the transposed call) followed by the [1,3,3,1] FIR with pad (1,1) and
gain 4, which is rosinality's transposed conv + Blur. The flip in rosinality's (and
legacy.py's) TF conversions comes from TF's transposed-conv convention. Verified numerically
against a re-implementation of NVIDIA's forward in ``tests/test_nvidia.py``: equal to float64
precision except for one genuine difference between the two code bases, the demodulation
epsilon (rosinality adds 1e-8 after the 1/sqrt(in*k*k) weight gain, NVIDIA before it; relative
effect ~0.5e-8 * in*k*k / sum (W*s)^2, far below float32 resolution for trained weights).

Block and layer indices: NVIDIA block k (b4 = 0, b8 = 1, ..., b1024 = 8) is our ILO layer k.
SGILO's ``SynthesisNetwork.forward(ws, layer_in, start_layer, end_layer)`` returns block
``end_layer``'s ``x``, which is ``Generator.split(w, noises, end_layer).features``; restarting
at ``start_layer`` with an empty RGB sum is ``resume(..., skip_mode="official")``. The ws
split (b4: w0, w1; block k: w(2k-1), w(2k), w(2k+1)) is ours. The official score models
layer1/2/3 ([512,4,4]/[512,8,8]/[512,16,16]) model our layers 0/1/2 (``OFFICIAL_LAYER_INDEX``).
The 17 ``noise_const`` buffers in registration order (b4.conv1, b8.conv0, b8.conv1, ...) are our
noise indices 0..16; SGILO's per-sample ``randn([bs,res,res])`` replacement is our noise list
``[bs,1,res,res]`` (its broadcast against [bs,C,res,res] only works for bs = 1).

Not representable, reported in ``extras['warnings']``: ``conv_clamp`` (our generator never
clamps) and ``num_fp16_res`` (we always compute in float32, NVIDIA's ``force_fp32``).
"""
from __future__ import annotations

import argparse
import collections
import io
import math
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.priors.checkpoint import CheckpointError, load_state_dict_strict
from bench.priors.stylegan2 import Generator, generator_config

MAPPING_LR = 0.01  # our Generator's lr_mlp, which NVIDIA's mapping_kwargs.lr_multiplier must equal


class NvidiaFormatError(CheckpointError):
    """An NVIDIA generator file we cannot read or convert; the message says what and where."""


# ----------------------------------------------------------------------------- restricted unpickling
class Stub(dict):
    """Inert stand-in for any class or function a pickle names that is not on the allow-list.

    A dict so that dict subclasses (``dnnlib.EasyDict``) keep their items; calling it, building
    it or setting its state only records the arguments.
    """

    qualname = "?"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stub {self.qualname}{' ' + dict.__repr__(self) if len(self) else ''}>"


class PersistentStub:
    """What ``_reconstruct_persistent_obj(meta)`` becomes: class name and state, never the source."""

    def __init__(self, meta: Any):
        meta = meta if isinstance(meta, dict) else {}
        self.class_name: str = str(meta.get("class_name", "?"))
        self.state: dict = meta.get("state") if isinstance(meta.get("state"), dict) else {}

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


def _load_storage_from_bytes(b: bytes) -> Any:
    """Safe replacement of ``torch.storage._load_from_bytes`` (a legacy torch.save of one storage)."""
    return torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool, backward_hooks: Any, *state: Any) -> torch.Tensor:
    """Parameters come back as plain tensors (hooks and extra state are dropped)."""
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError(f"parameter data is {type(data).__name__}, not a tensor")
    return data


def _rebuild_from_type_v2(func: Any, new_type: Any, args: tuple, state: Any) -> Any:
    """Tensor subclasses: rebuild the plain tensor with the (already restricted) ``func``."""
    return func(*args)


def _stub_reconstructor(cls: Any, base: Any, state: Any = None) -> Stub:
    """``copyreg._reconstructor`` for non-persistent objects: an inert stub of ``cls``."""
    return cls() if isinstance(cls, type) and issubclass(cls, Stub) else Stub()


def _reconstruct_persistent_obj(meta: Any) -> PersistentStub:
    return PersistentStub(meta)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("copyreg", "_reconstructor"): _stub_reconstructor,
    ("copy_reg", "_reconstructor"): _stub_reconstructor,
}
if hasattr(torch._utils, "_rebuild_tensor_v3"):
    _ALLOWED[("torch._utils", "_rebuild_tensor_v3")] = torch._utils._rebuild_tensor_v3


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that imports nothing: allow-listed torch rebuild functions, else inert stubs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if name == "_reconstruct_persistent_obj" and module.split(".")[-1] == "persistence":
            return _reconstruct_persistent_obj
        return type(name, (Stub,), {"qualname": f"{module}.{name}", "__module__": __name__})

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}: not a stylegan2-ada pickle")


def safe_unpickle(data: bytes) -> Any:
    return SafeUnpickler(io.BytesIO(data)).load()


# ----------------------------------------------------------------------------- module trees
def _module_state(obj: Any) -> dict | None:
    if isinstance(obj, PersistentStub):
        return obj.state
    if isinstance(obj, Stub) and isinstance(obj.state, dict) and "_modules" in obj.state:
        return obj.state
    return None


def module_state_dict(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flat ``state_dict`` (persistent buffers included) of an unpickled module shell."""
    st = _module_state(obj)
    if st is None:
        raise NvidiaFormatError(f"{prefix or 'object'!r} is not a pickled torch module ({obj!r})")
    skip = st.get("_non_persistent_buffers_set") or ()
    out: dict[str, torch.Tensor] = {}
    for kind in ("_parameters", "_buffers"):
        for name, t in (st.get(kind) or {}).items():
            if t is None or (kind == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise NvidiaFormatError(f"{prefix}{name} is {t!r}, not a tensor")
            out[prefix + name] = t.detach()
    for name, child in (st.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out


def _numpy_scalar(obj: Stub) -> Any:
    """Value of a pickled numpy scalar (``numpy.core.multiarray.scalar(dtype, bytes)``), else None."""
    if not (obj.qualname.startswith("numpy") and obj.qualname.endswith(".scalar") and len(obj.args) == 2):
        return None
    dtype, raw = obj.args
    code = dtype.args[0] if isinstance(dtype, Stub) and dtype.args else None
    if not (isinstance(raw, bytes) and isinstance(code, str) and re.fullmatch(r"[fiub]\d{1,2}", code)):
        return None
    order = dtype.state[1] if isinstance(dtype.state, tuple) and len(dtype.state) > 1 else "="
    try:
        return np.frombuffer(raw, dtype=np.dtype(code).newbyteorder(order if order in "<>" else "="))[0].item()
    except (TypeError, ValueError):
        return None


def _plain(obj: Any) -> Any:
    """Stubs and containers -> JSON-like values (for reporting the pickled init kwargs)."""
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, Stub) and not len(obj):
        if not obj.args and obj.state is None:  # an empty dict subclass such as EasyDict()
            return {}
        value = _numpy_scalar(obj)
        return repr(obj) if value is None else value
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return repr(obj)


def init_kwargs(obj: Any) -> dict:
    """Constructor kwargs that persistence stores with each module (empty if absent)."""
    st = _module_state(obj) or {}
    kw = st.get("_init_kwargs")
    return _plain(kw) if isinstance(kw, dict) else {}


# ----------------------------------------------------------------------------- reading files
def _is_torch_legacy(obj: Any) -> bool:
    return isinstance(obj, int) and not isinstance(obj, bool) and obj == 0x1950A86A20F9469CFC6C


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v.detach() for k, v in obj.items()}
    return None


def read_nvidia(path: str | Path, key: str = "G_ema") -> tuple[dict[str, torch.Tensor], dict]:
    """(flat NVIDIA-named state dict of ``key``, info) from a ``.pkl`` or a state-dict ``.pt``.

    ``info`` holds ``format`` ('pickle' or 'state_dict'), ``class_name`` and the pickled
    ``init_kwargs`` when there are any.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise NvidiaFormatError(f"cannot read {path}: {err}") from err
    obj: Any = None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        try:
            obj = safe_unpickle(data)
        except Exception as err:  # noqa: BLE001 - re-raised with the file name
            raise NvidiaFormatError(f"{path}: not a readable pickle: {type(err).__name__}: {err}") from err
    if obj is None or _is_torch_legacy(obj):
        try:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001
            raise NvidiaFormatError(f"{path}: cannot torch.load with weights_only=True: {err}") from err
    if isinstance(obj, dict) and key in obj:
        obj = obj[key]
    sd = _tensor_dict(obj)
    if sd is not None:
        if any(k.startswith("b4.") for k in sd):
            raise NvidiaFormatError(f"{path}: holds only the synthesis network (keys 'b4.*'); the mapping network "
                                    "('mapping.*') is needed too: save G_ema.state_dict(), not G_ema.synthesis's")
        return sd, {"format": "state_dict"}
    if _module_state(obj) is None:
        top = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise NvidiaFormatError(f"{path}: no {key!r} generator module or state dict found (top level: {top})")
    return module_state_dict(obj), {"format": "pickle", "class_name": getattr(obj, "class_name", "?"),
                                    "init_kwargs": init_kwargs(obj)}


# ----------------------------------------------------------------------------- conversion
def _block_res(sd: dict[str, torch.Tensor]) -> list[int]:
    res = {int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.b(\d+)\.", k))}
    return sorted(res)


def nvidia_config(sd: dict[str, torch.Tensor]) -> dict:
    """Our Generator's constructor arguments implied by an NVIDIA-named state dict."""
    try:
        n_mlp = len({k.split(".")[1] for k in sd if re.match(r"mapping\.fc\d+\.weight$", k)})
        style_dim = sd[f"mapping.fc{n_mlp - 1}.weight"].shape[0]
        z_dim = sd["mapping.fc0.weight"].shape[1]
        res = _block_res(sd)
        channels = {r: sd[f"synthesis.b{r}.conv1.weight"].shape[0] for r in res}
        img_channels = sd["synthesis.b4.torgb.weight"].shape[0]
    except (KeyError, IndexError) as err:
        raise NvidiaFormatError(f"not an NVIDIA stylegan2-ada generator state dict: key {err} missing") from err
    if "mapping.embed.weight" in sd:
        raise NvidiaFormatError("conditional generator (mapping.embed.*, c_dim > 0) is not supported")
    if any(re.match(r"synthesis\.b\d+\.skip\.", k) for k in sd):
        raise NvidiaFormatError("architecture 'resnet' (synthesis.b*.skip.*) is not supported; only 'skip'")
    if z_dim != style_dim or any(sd[f"mapping.fc{i}.weight"].shape != (style_dim, style_dim) for i in range(n_mlp)):
        raise NvidiaFormatError(f"mapping layers must all be {style_dim}x{style_dim} (z_dim = w_dim = layer_features)")
    if res != [2**i for i in range(2, len(res) + 2)] or res[-1] < 8:
        raise NvidiaFormatError(f"block resolutions {res} are not 4, 8, ..., size (size >= 8)")
    return dict(size=res[-1], style_dim=style_dim, n_mlp=n_mlp, channels=channels, img_channels=img_channels)


def _check_kwargs(kw: dict) -> list[str]:
    """Errors for init kwargs we cannot represent; warnings for those we only approximate."""
    m, s = kw.get("mapping_kwargs"), kw.get("synthesis_kwargs")
    m, s = (m if isinstance(m, dict) else {}), (s if isinstance(s, dict) else {})
    if kw.get("c_dim", 0) not in (0, None):
        raise NvidiaFormatError(f"c_dim = {kw['c_dim']}: conditional generators are not supported")
    notes = []
    for name, value, want in [("mapping_kwargs.lr_multiplier", m.get("lr_multiplier", MAPPING_LR), MAPPING_LR),
                              ("mapping_kwargs.activation", m.get("activation", "lrelu"), "lrelu"),
                              ("synthesis_kwargs.activation", s.get("activation", "lrelu"), "lrelu"),
                              ("synthesis_kwargs.architecture", s.get("architecture", "skip"), "skip"),
                              ("synthesis_kwargs.use_noise", s.get("use_noise", True), True)]:
        if isinstance(value, str) and value.startswith("<stub"):
            notes.append(f"{name} = {value}: could not decode, not checked")
        elif not (math.isclose(value, want) if isinstance(want, float) and isinstance(value, (int, float))
                  else value == want):
            raise NvidiaFormatError(f"{name} = {value!r} is not supported (need {want!r})")
    if s.get("conv_clamp") is not None:
        notes.append(f"conv_clamp = {s['conv_clamp']}: NVIDIA clamps conv outputs to +-{s['conv_clamp']}, we do not")
    if s.get("num_fp16_res"):
        notes.append(f"num_fp16_res = {s['num_fp16_res']}: NVIDIA runs those blocks in float16 on GPU, we use float32")
    return notes


def _filter4(f: torch.Tensor, where: str) -> torch.Tensor:
    """NVIDIA's normalised resample filter as our (x4, up-sampling) kernel buffer."""
    if f.shape != (4, 4):
        raise NvidiaFormatError(f"{where}: resample_filter of shape {tuple(f.shape)}; only 4x4 filters are supported")
    return f.float() * 4


def nvidia_to_rosinality(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict, torch.Tensor | None]:
    """(rosinality-layout state dict, Generator config, w_avg or None); errors name stray keys."""
    cfg = nvidia_config(sd)
    src = dict(sd)
    out: dict[str, torch.Tensor] = {}

    def take(name: str) -> torch.Tensor:
        try:
            return src.pop(name).float()
        except KeyError:
            raise NvidiaFormatError(f"missing key {name!r}") from None

    for i in range(cfg["n_mlp"]):
        out[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight")
        out[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias")
    w_avg = src.pop("mapping.w_avg").float() if "mapping.w_avg" in src else None

    def styled(nv: str, ours: str, noise_index: int, up: bool) -> None:
        out[f"{ours}.conv.weight"] = take(f"{nv}.weight").unsqueeze(0)
        out[f"{ours}.conv.modulation.weight"] = take(f"{nv}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{nv}.affine.bias")
        out[f"{ours}.noise.weight"] = take(f"{nv}.noise_strength").reshape(1)
        out[f"{ours}.activate.bias"] = take(f"{nv}.bias")
        noise = take(f"{nv}.noise_const")
        out[f"noises.noise_{noise_index}"] = noise.reshape(1, 1, *noise.shape[-2:])
        filt = take(f"{nv}.resample_filter")
        if up:
            out[f"{ours}.conv.blur.kernel"] = _filter4(filt, nv)

    def torgb(nv: str, ours: str, upsample_filter: torch.Tensor | None) -> None:
        out[f"{ours}.bias"] = take(f"{nv}.bias").reshape(1, -1, 1, 1)
        if upsample_filter is not None:
            out[f"{ours}.upsample.kernel"] = _filter4(upsample_filter, nv)
        out[f"{ours}.conv.weight"] = take(f"{nv}.weight").unsqueeze(0)
        out[f"{ours}.conv.modulation.weight"] = take(f"{nv}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{nv}.affine.bias")

    out["input.input"] = take("synthesis.b4.const").unsqueeze(0)
    styled("synthesis.b4.conv1", "conv1", 0, up=False)
    take("synthesis.b4.resample_filter")
    torgb("synthesis.b4.torgb", "to_rgb1", None)
    for j, r in enumerate(_block_res(sd)[1:], start=1):
        b = f"synthesis.b{r}"
        styled(f"{b}.conv0", f"convs.{2 * j - 2}", 2 * j - 1, up=True)
        styled(f"{b}.conv1", f"convs.{2 * j - 1}", 2 * j, up=False)
        torgb(f"{b}.torgb", f"to_rgbs.{j - 1}", take(f"{b}.resample_filter"))
    if src:
        raise NvidiaFormatError(f"unexpected keys ({len(src)}): {', '.join(sorted(src))}")
    return out, cfg, w_avg


_SUFFIX = {"conv.weight": "weight", "conv.modulation.weight": "affine.weight", "conv.modulation.bias": "affine.bias",
           "noise.weight": "noise_strength", "activate.bias": "bias", "bias": "bias", "conv.blur.kernel":
           "resample_filter", "upsample.kernel": "resample_filter"}


def nvidia_name(ours: str) -> str:
    """The NVIDIA state-dict key a rosinality-layout key came from (for error messages), or ``ours``."""
    parts = ours.split(".")
    if parts[0] == "style" and len(parts) == 3:
        return f"mapping.fc{int(parts[1]) - 1}.{parts[2]}"
    if ours == "input.input":
        return "synthesis.b4.const"
    if parts[0] in ("conv1", "to_rgb1"):
        block, rest = "synthesis.b4." + ("conv1" if parts[0] == "conv1" else "torgb"), ".".join(parts[1:])
    elif parts[0] in ("convs", "to_rgbs") and len(parts) > 2:
        k = int(parts[1])
        res = 2 ** ((k // 2 + 1 if parts[0] == "convs" else k + 1) + 2)
        layer = ("conv0" if k % 2 == 0 else "conv1") if parts[0] == "convs" else "torgb"
        block, rest = f"synthesis.b{res}.{layer}", ".".join(parts[2:])
    else:
        return ours
    return f"{block}.{_SUFFIX.get(rest, rest)}"


def _with_nvidia_names(message: str) -> str:
    """Append the NVIDIA name to every rosinality key quoted in a strict-loading message."""
    import re

    return re.sub(r"\b((?:style|convs|to_rgbs)\.\d+\.[\w.]+|(?:conv1|to_rgb1)\.[\w.]+|input\.input)\b",
                  lambda m: f"{m.group(1)} (NVIDIA {nvidia_name(m.group(1))})", message)


def load_nvidia_generator(path: str | Path, key: str = "G_ema") -> tuple[Generator, dict]:
    """Our Generator (eval, no grad) with the weights of an NVIDIA ``.pkl``/``.pt`` generator.

    ``extras``: ``latent_avg`` (NVIDIA ``mapping.w_avg``, or None), ``generator_config``,
    ``format``, ``init_kwargs`` (pickles only) and ``warnings`` (features we do not reproduce).
    """
    sd, info = read_nvidia(path, key)
    notes = _check_kwargs(info.get("init_kwargs") or {})
    try:
        rsd, cfg, w_avg = nvidia_to_rosinality(sd)
        g = load_state_dict_strict(Generator(**cfg), rsd)
    except CheckpointError as err:
        raise NvidiaFormatError(f"{path}: {_with_nvidia_names(str(err))}") from None
    for note in notes:
        warnings.warn(f"{path}: {note}", stacklevel=2)
    extras = {**info, "latent_avg": w_avg, "generator_config": generator_config(g), "warnings": notes}
    return g.eval().requires_grad_(False), extras


def convert(src: str | Path, dst: str | Path, key: str = "G_ema") -> Path:
    """Write a rosinality-format checkpoint ``{'g_ema', 'latent_avg', 'generator_config'}``."""
    g, extras = load_nvidia_generator(src, key)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {"g_ema": g.state_dict(), "generator_config": extras["generator_config"]}
    if extras["latent_avg"] is not None:
        ckpt["latent_avg"] = extras["latent_avg"]
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.priors.nvidia", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="NVIDIA .pkl/.pt generator -> rosinality-format .pt (no pickled code is run)")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--key", default="G_ema", help="network inside the pickle (default G_ema)")
    args = p.parse_args(argv)
    try:
        out = convert(args.src, args.dst, args.key)
    except (NvidiaFormatError, CheckpointError, OSError) as err:  # a bad or missing file: a message, exit 2
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
