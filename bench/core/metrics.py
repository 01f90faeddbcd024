"""Per-image reconstruction metrics: MSE, PSNR and LPIPS.

All metrics take batches [B, C, H, W] of images in [-1, 1] (the generator's range) and
return one value per image, shape [B], so that averages, medians and error bars are taken
by the caller over images (never over a batch mean that would depend on batching).

* MSE is the mean squared error on the [-1, 1] scale.
* PSNR is reported on the [0, 1] scale: ``10 log10(1 / mse01)`` with ``mse01 = mse / 4``,
  i.e. data range 2 on [-1, 1] (``10 log10(4 / mse)``). Identical images give ``inf``.
* LPIPS uses the ``lpips`` package (v0.1 linear heads, which it ships) on a torchvision
  ImageNet backbone (which it does not ship: torchvision downloads it from its model zoo,
  impossible here). The backbone file is looked up as asset ``lpips-alex``/``lpips-vgg``
  in ``$SGILO_BENCH_CACHE`` and then in torch hub's ``checkpoints`` folder. If neither
  exists LPIPS is *unavailable*: :class:`LpipsMetric` returns ``None`` with a reason naming
  the missing file and where it goes, never a number computed with a random backbone.
  Grayscale images are repeated to 3 channels. Images whose shorter side is below
  ``min_size`` (default 64) are bilinearly upsampled to it first: LPIPS's heads were
  calibrated on 64x64 patches, and at 32x32 AlexNet's last three LPIPS layers are 1x1 maps
  (below 31 px AlexNet fails outright). Scores on 32x32 Fashion-MNIST are therefore LPIPS
  of the 64x64 upsampled images, and are not comparable with LPIPS on FFHQ.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.core.assets import MissingAssetError, get_asset

LPIPS_ASSETS = {"alex": "lpips-alex", "vgg": "lpips-vgg"}


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two batches [B, C, H, W] of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error on the [-1, 1] scale, [B]."""
    _check_pair(x, y)
    return (x.detach().double() - y.detach().double()).square().flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB on the [0, 1] scale (data range 2 on [-1, 1]), [B]; inf if identical."""
    return 10.0 * torch.log10(4.0 / mse(x, y))


# ----------------------------------------------------------------------------- LPIPS
def find_backbone(net: str = "alex") -> tuple[Path | None, str]:
    """(path, "") of the backbone file, or (None, reason naming the file and where it goes)."""
    if net not in LPIPS_ASSETS:
        raise ValueError(f"unknown LPIPS net {net!r}; valid: {', '.join(LPIPS_ASSETS)}")
    asset = get_asset(LPIPS_ASSETS[net])
    hub = Path(torch.hub.get_dir()) / "checkpoints" / asset.filename
    for p in (asset.path, hub):
        if p.is_file():
            return p, ""
    return None, f"LPIPS unavailable: {asset.missing_message()} (also looked for {hub})"


def _backbone_state(lp_net: torch.nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Map torchvision's ``features.N.*`` keys to lpips's ``sliceK.N.*``; fail loudly on mismatch."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a torchvision state dict, got {type(sd).__name__}")
    target = lp_net.state_dict()  # e.g. "slice2.3.weight"
    wanted = {"features." + k.split(".", 1)[1]: k for k in target}
    missing = sorted(set(wanted) - set(sd))
    extra = sorted(k for k in sd if k.startswith("features.") and k not in wanted)
    bad_shape = sorted(k for k in wanted if k in sd and tuple(sd[k].shape) != tuple(target[wanted[k]].shape))
    if missing or extra or bad_shape:
        raise ValueError(f"{path} does not match the lpips backbone: missing {missing}, unexpected {extra}, "
                         f"wrong shape {bad_shape} (is it the right torchvision file?)")
    return {wanted[k]: sd[k] for k in wanted}


def load_lpips_model(net: str = "alex", device: torch.device | str = "cpu") -> torch.nn.Module:
    """An eval-mode ``lpips.LPIPS`` with the real backbone; MissingAssetError if it is absent.

    Usable as a differentiable loss too (its parameters are frozen).
    """
    path, reason = find_backbone(net)
    if path is None:
        raise MissingAssetError(reason)
    from bench.core.torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # lpips imports torchvision's model definitions
    import lpips

    with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" warning
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    model.net.load_state_dict(_backbone_state(model.net, path), strict=True)
    # lpips loads its linear heads with strict=False; make sure they really were loaded.
    heads = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    head_sd = torch.load(heads, map_location="cpu", weights_only=True)
    model_sd = model.state_dict()
    if not head_sd or any(k not in model_sd or not torch.equal(model_sd[k], v) for k, v in head_sd.items()):
        raise ValueError(f"lpips linear heads from {heads} were not loaded into the model")
    model.eval().requires_grad_(False)
    return model.to(device)


def prepare_for_lpips(x: torch.Tensor, min_size: int = 64) -> torch.Tensor:
    """Grayscale -> 3 channels; shorter side < min_size -> bilinear upsample to min_size."""
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        raise ValueError(f"LPIPS needs 1 or 3 channels, got {x.shape[1]}")
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        s = min_size / min(h, w)
        x = F.interpolate(x, size=(max(min_size, round(h * s)), max(min_size, round(w * s))),
                          mode="bilinear", align_corners=False)
    return x


class LpipsMetric:
    """Per-image LPIPS, or ``None`` plus :attr:`reason` when the backbone file is absent."""

    def __init__(self, net: str = "alex", device: torch.device | str = "cpu", min_size: int = 64,
                 batch_size: int = 32):
        self.net, self.device, self.min_size, self.batch_size = net, torch.device(device), min_size, batch_size
        self.path, self.reason = find_backbone(net)
        self._model: torch.nn.Module | None = None

    @property
    def available(self) -> bool:
        return self.path is not None

    @property
    def name(self) -> str:
        return f"lpips-{self.net}"

    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = load_lpips_model(self.net, self.device)
        return self._model

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """LPIPS [B] (float64, CPU) of images in [-1, 1], or None if unavailable (see ``reason``)."""
        _check_pair(x, y)
        if not self.available:
            return None
        m = self.model()
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            a = prepare_for_lpips(x[i:i + self.batch_size].detach().to(self.device, torch.float32), self.min_size)
            b = prepare_for_lpips(y[i:i + self.batch_size].detach().to(self.device, torch.float32), self.min_size)
            out.append(m(a, b).flatten().double().cpu())
        return torch.cat(out)


def compute_metrics(x: torch.Tensor, y: torch.Tensor, lpips_metric: LpipsMetric | None = None) -> dict[str, object]:
    """{"mse": [B], "psnr": [B], "lpips": [B] or None, "lpips_reason": str} for one batch."""
    out: dict[str, object] = {"mse": mse(x, y), "psnr": psnr(x, y)}
    if lpips_metric is not None:
        out["lpips"] = lpips_metric(x, y)
        out["lpips_reason"] = lpips_metric.reason
    return out


def nan_if_none(v: torch.Tensor | None, batch: int) -> torch.Tensor:
    """Tabulation helper: an unavailable metric becomes NaN (never a made-up number)."""
    return torch.full((batch,), math.nan, dtype=torch.float64) if v is None else v
