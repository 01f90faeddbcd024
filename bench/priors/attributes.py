"""Attribute classifiers for the fairness table, found by name: ``get_classifier("clip", ...)``.

An attribute classifier maps images [N, C, H, W] in [-1, 1] (the generator's range) to a group
index [N] (a LongTensor into ``groups``). Two implementations:

- ``clip``: open_clip zero-shot between one text prompt per group (default: ViT-B-32 with the
  OpenAI weights, prompts "a photo of a man" / "a photo of a woman"), as the SGILO paper's
  fairness ablation on FFHQ. Weights come from a local file only (the asset cache or an explicit
  path); nothing is downloaded, and a missing file stops with a message naming it.
- ``embedded``: the committed Fashion-MNIST CNN restricted to the two fairness classes
  (Sandal vs Sneaker), the stand-in for CLIP in the embedded world.

New classifiers register with :func:`register_classifier` (e.g. a test double); the factory
receives the keyword options given to :func:`get_classifier`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch
import torch.nn.functional as F

from bench.core.assets import Asset, MissingAssetError, cache_dir, get_asset


class AttributeClassifier(Protocol):
    """What the fairness table needs from a classifier."""

    groups: tuple[str, ...]  # group names; predict returns indices into this tuple
    description: str  # one line for the table header (model, weights, prompts)
    random_weights: bool  # True for a randomly initialised model (tests): never a result

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [-1, 1] -> LongTensor [N] of group indices."""
        ...


_FACTORIES: dict[str, Callable[..., AttributeClassifier]] = {}


def register_classifier(name: str) -> Callable[[Callable[..., AttributeClassifier]], Callable[..., AttributeClassifier]]:
    def deco(factory: Callable[..., AttributeClassifier]) -> Callable[..., AttributeClassifier]:
        _FACTORIES[name] = factory
        return factory

    return deco


def classifier_names() -> list[str]:
    return sorted(_FACTORIES)


def get_classifier(name: str, **options) -> AttributeClassifier:
    if name not in _FACTORIES:
        raise KeyError(f"unknown attribute classifier {name!r}; valid classifiers: {', '.join(classifier_names())}")
    return _FACTORIES[name](**options)


def _batched_predict(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch: int) -> torch.Tensor:
    if images.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(images.shape)}")
    out = [fn(images[i : i + batch]) for i in range(0, images.shape[0], batch)]
    return torch.cat(out).long().cpu() if out else torch.zeros(0, dtype=torch.long)


# ----------------------------------------------------------------------------- CLIP
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "openai"
DEFAULT_GROUPS = ("man", "woman")
DEFAULT_PROMPTS = ("a photo of a man", "a photo of a woman")
_DEFAULT_CLIP_ASSET = "clip-vit-b-32"


def clip_weights_asset(model: str, pretrained: str) -> Asset:
    """The cache file holding open_clip (model, pretrained tag) weights.

    ViT-B-32/openai is the registered asset ``clip-vit-b-32``; other pairs follow the same
    naming (``open_clip_<model>_<tag>.bin`` in the cache folder), so the error for a missing
    file names exactly what to put where."""
    if (model, pretrained) == (DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED):
        return get_asset(_DEFAULT_CLIP_ASSET)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in f"{model}_{pretrained}")
    return Asset(f"clip-{safe}", f"open_clip_{safe}.bin", f"open_clip {model} weights (pretrained tag {pretrained!r})",
                 f"open_clip pretrained tag {pretrained!r} for {model} (the open_clip_pytorch_model.bin / "
                 f"open_clip_model.safetensors of that tag's Hugging Face hub repository)")


def resolve_clip_weights(model: str, pretrained: str, weights: str | Path | None = None) -> Path:
    """The local weights file: ``weights`` when given, else the cache asset; never a download."""
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise MissingAssetError(
                f"CLIP weights file {p} (given with --clip-weights) does not exist; it should hold open_clip {model} "
                f"weights ({pretrained!r}); or leave --clip-weights out and put the file "
                f"{clip_weights_asset(model, pretrained).filename} in {cache_dir()} ($SGILO_BENCH_CACHE)")
        return p
    return clip_weights_asset(model, pretrained).require()


class ClipClassifier:
    """Zero-shot CLIP between one prompt per group: argmax of the image-text cosine similarity.

    Preprocessing of images in [-1, 1] (done here, in torch, so generator outputs need no PIL
    round trip): grayscale is repeated to 3 channels; resize to the model's input size (224 for
    ViT-B-32) with bicubic interpolation and antialiasing (what PIL's bicubic resize in
    open_clip's own transform does; square images need no crop); map to [0, 1] and clamp; then
    CLIP's mean/std normalisation (from the pretrained tag's config). Note the official SGILO
    code (solve_inverse.py 286-306) differs: it feeds [-1, 1] images with *no* mean/std
    normalisation (nearest x7 upsample then 32x32 average pooling) and classifies only batch
    item 0; we do neither, so our numbers are not bit-comparable with its log.
    """

    def __init__(self, model: str = DEFAULT_CLIP_MODEL, pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
                 weights: str | Path | None = None, prompts: Sequence[str] = DEFAULT_PROMPTS,
                 groups: Sequence[str] = DEFAULT_GROUPS, device: str | torch.device = "cpu", batch: int = 64,
                 random_init: bool = False, model_kwargs: dict | None = None):
        """``pretrained`` is the open_clip tag the weights file holds (it sets QuickGELU and the
        normalisation); ``weights`` an explicit file (default: the cache asset of model/tag).
        ``random_init=True`` builds the architecture with random weights and loads nothing: for
        tests of the plumbing only (the predictions are meaningless; ``random_weights`` is set)."""
        from bench.core.torchvision_compat import ensure_torchvision_importable

        ensure_torchvision_importable()  # open_clip imports torchvision's transforms
        import open_clip

        if len(prompts) != len(groups) or len(groups) < 2:
            raise ValueError(f"need one prompt per group and at least two groups; got groups {list(groups)} "
                             f"and prompts {list(prompts)}")
        self.groups, self.prompts = tuple(groups), tuple(prompts)
        self.device = torch.device(device)
        self.batch = batch
        self.random_weights = random_init
        if not random_init and not pretrained and weights is None:
            raise ValueError("CLIP: give the pretrained tag the weights belong to (e.g. 'openai') or a weights file")
        tag_cfg = open_clip.get_pretrained_cfg(model, pretrained) if pretrained else {}
        if random_init:
            path = None
        else:
            path = resolve_clip_weights(model, pretrained or "", weights)
        # A file path (unlike a tag) does not tell open_clip that OpenAI weights need QuickGELU
        # activations; take it from the tag's config, else the GELU model would be silently wrong.
        model_obj, _, _ = open_clip.create_model_and_transforms(
            model, pretrained=None if path is None else str(path), device=self.device,
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)), **(model_kwargs or {}))
        self.model = model_obj.eval().requires_grad_(False)
        pp = open_clip.get_model_preprocess_cfg(self.model)
        mean = tag_cfg.get("mean") or pp.get("mean") or open_clip.OPENAI_DATASET_MEAN
        std = tag_cfg.get("std") or pp.get("std") or open_clip.OPENAI_DATASET_STD
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        size = pp.get("size", 224)
        self.size = tuple(size) if isinstance(size, (list, tuple)) else (int(size), int(size))
        tok = open_clip.get_tokenizer(model)
        with torch.inference_mode():
            t = self.model.encode_text(tok(list(self.prompts)).to(self.device))
            self.text = F.normalize(t.float(), dim=-1)
        src = "random init (tests only)" if path is None else str(path)
        self.description = f"CLIP {model} ({pretrained}, {src}), prompts {list(self.prompts)}"

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bicubic", align_corners=False, antialias=True)
        x = ((x + 1) / 2).clamp(0, 1)
        return (x - self.mean) / self.std

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Cosine similarities [N, groups] (every image of the batch, unlike the official code)."""
        with torch.inference_mode():
            f = F.normalize(self.model.encode_image(self.preprocess(images)).float(), dim=-1)
            return f @ self.text.T

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return _batched_predict(lambda x: self.logits(x).argmax(1), images, self.batch)


@register_classifier("clip")
def _clip(**options) -> ClipClassifier:
    return ClipClassifier(**options)


# ----------------------------------------------------------------------------- embedded
class EmbeddedPairClassifier:
    """The Fashion-MNIST CNN, deciding only between the fairness set's two classes.

    The prediction is the argmax over the *two* group logits (Sandal = class 5, Sneaker = 7),
    not over all 10 classes: a blurry reconstruction that the 10-way head would call e.g.
    "Ankle boot" still has to be assigned to one of the two groups, as CLIP's two prompts force
    a man/woman decision.
    """

    def __init__(self, device: str | torch.device = "cpu", path: str | Path | None = None, batch: int = 512):
        from bench.data.evalset import FAIRNESS_GROUPS
        from bench.embedded.classifier import load_classifier

        self.groups = tuple(FAIRNESS_GROUPS)  # ("Sandal", "Sneaker")
        self.class_ids = torch.tensor([FAIRNESS_GROUPS[g] for g in self.groups])
        self.device = torch.device(device)
        self.model = load_classifier(self.device, path)
        self.batch = batch
        self.random_weights = False
        self.description = (f"embedded Fashion-MNIST CNN, argmax over the {'/'.join(self.groups)} logits "
                            f"(classes {self.class_ids.tolist()})")

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(images.to(self.device, torch.float32))[:, self.class_ids.to(self.device)]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 3:  # RGB -> gray, like the colorize task's luma
            w = torch.tensor([0.2989, 0.5870, 0.1140], device=images.device).view(1, 3, 1, 1)
            images = (images * w).sum(1, keepdim=True)
        return _batched_predict(lambda x: self.logits(x).argmax(1), images, self.batch)


@register_classifier("embedded")
def _embedded(**options) -> EmbeddedPairClassifier:
    return EmbeddedPairClassifier(**options)
