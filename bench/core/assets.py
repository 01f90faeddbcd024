"""Asset registry: every model file the harness may load, by name, with where it comes from.

Embedded assets (trained by this project on Fashion-MNIST) are committed under
``bench/embedded/weights/``. Real-world assets (FFHQ StyleGAN-2, score models, CLIP, the
LPIPS backbone) are looked up in the cache folder ``$SGILO_BENCH_CACHE`` (default
``~/.cache/sgilo-bench``); a missing one raises :class:`MissingAssetError`, whose message
says which file, where to put it and where it comes from. Nothing is ever downloaded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CACHE_ENV = "SGILO_BENCH_CACHE"
EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "embedded" / "weights"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "sgilo-bench")).expanduser()


class MissingAssetError(FileNotFoundError):
    """A registered asset whose file is absent; the message says how to provide it."""


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str
    description: str
    source: str
    embedded: bool = False  # committed with the package (else: user cache)
    size_hint: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def path(self) -> Path:
        return (EMBEDDED_DIR if self.embedded else cache_dir()) / self.filename

    def exists(self) -> bool:
        return self.path.is_file()

    def missing_message(self) -> str:
        where = self.path
        size = f" (~{self.size_hint})" if self.size_hint else ""
        if self.embedded:
            return (f"embedded asset {self.name!r} is missing: expected {where}. It is committed with the project; "
                    f"restore it with `git checkout -- {where}` or retrain it ({self.source}).")
        return (f"asset {self.name!r} ({self.description}) is missing: put the file {self.filename}{size} at {where} "
                f"(the folder is ${CACHE_ENV}, default ~/.cache/sgilo-bench). Source: {self.source}")

    def require(self) -> Path:
        if not self.exists():
            raise MissingAssetError(self.missing_message())
        return self.path


_ASSETS: dict[str, Asset] = {}


def register_asset(asset: Asset) -> Asset:
    _ASSETS[asset.name] = asset
    return asset


def get_asset(name: str) -> Asset:
    try:
        return _ASSETS[name]
    except KeyError:
        raise KeyError(f"unknown asset {name!r}; registered: {', '.join(sorted(_ASSETS))}") from None


def asset_path(name: str) -> Path:
    """Path of a registered asset, or MissingAssetError explaining how to get it."""
    return get_asset(name).require()


# ----------------------------------------------------------------------------- FFHQ world
register_asset(Asset(
    "ffhq-stylegan2", "stylegan2-ffhq-config-f.pt",
    "rosinality StyleGAN-2 FFHQ 1024 checkpoint ({'g_ema', 'latent_avg'})",
    "rosinality/stylegan2-pytorch README (converted from NVIDIA's stylegan2-ffhq-config-f.pkl), also linked from the ILO README",
    size_hint="364 MB"))
register_asset(Asset(
    "ffhq-stylegan2-ada-pkl", "ffhq.pkl",
    "NVIDIA stylegan2-ada-pytorch FFHQ 1024 network pickle (uses 'G_ema'), the generator SGILO's official code "
    "and score models use; read without running pickled code by bench.priors.nvidia, or converted once with "
    "`python -m bench.priors.nvidia convert ffhq.pkl ffhq-ada-rosinality.pt`",
    "NVIDIA stylegan2-ada-pytorch pretrained networks (ffhq.pkl); also in the checkpoint zip linked from the "
    "SGILO README (checkpoints/stylegan/ffhq.pkl)",
    size_hint="360 MB"))
register_asset(Asset(
    "ffhq-gaussian-fit", "gaussian_fit.pt",
    "Gaussian fit of the FFHQ mapping network output ({'mean','std'} float32[512]); recomputed from the "
    "generator and cached here when absent",
    "ships in the ILO repository (giannisdaras/ilo, gaussian_fit.pt); or computed by bench.priors.mapping_proxy",
    size_hint="5 kB"))
register_asset(Asset(
    "ffhq-ada-gaussian-fit", "sgilo_gaussian_fit.pt",
    "Gaussian fit of the mapping network of NVIDIA's ffhq.pkl (prior ffhq-ada; {'mean','std'} float32[512]); "
    "recomputed from the generator and cached here when absent",
    "the gaussian_fit.pt in the checkpoint zip linked from the SGILO README (copy it here as sgilo_gaussian_fit.pt); "
    "or computed by bench.priors.mapping_proxy",
    size_hint="5 kB"))
register_asset(Asset(
    "lpips-alex", "alexnet-owt-7be5be79.pth",
    "torchvision AlexNet ImageNet weights, the LPIPS backbone (the lpips package ships only the linear heads)",
    "torchvision model zoo: alexnet-owt-7be5be79.pth (torchvision.models.AlexNet_Weights.IMAGENET1K_V1)",
    size_hint="233 MB"))
register_asset(Asset(
    "lpips-vgg", "vgg16-397923af.pth",
    "torchvision VGG16 ImageNet weights, the LPIPS-VGG backbone used by ILO/SGILO's perceptual loss",
    "torchvision model zoo: vgg16-397923af.pth (torchvision.models.VGG16_Weights.IMAGENET1K_V1)",
    size_hint="528 MB"))
register_asset(Asset(
    "clip-vit-b-32", "open_clip_ViT-B-32_openai.bin",
    "CLIP ViT-B/32 with OpenAI weights, for the FFHQ fairness table",
    "open_clip pretrained tag 'openai' for ViT-B-32 (file open_clip_pytorch_model.bin of timm/vit_base_patch32_clip_224.openai on the HF hub)",
    size_hint="605 MB"))

# ----------------------------------------------------------------------------- embedded world
register_asset(Asset(
    "fmnist-classifier", "classifier.pt",
    "Fashion-MNIST 10-class CNN ({'state_dict', 'config', 'meta'}): CLIP stand-in for the fairness table and "
    "feature extractor of the embedded quality figures",
    "python -m bench.embedded.classifier train (see bench/embedded/weights/classifier.md)",
    embedded=True, size_hint="1.5 MB"))
