"""Generator-quality figures of the embedded world, measured with the embedded classifier.

* class shares of predicted labels (is the generator mode-dropping classes?),
* mean max-softmax confidence (do samples look like *some* class?),
* "FID in the classifier's penultimate feature space": the Fréchet distance between Gaussians
  fitted to the 128-d penultimate features of :mod:`bench.embedded.classifier`. This is **not**
  Inception FID; its values are only comparable with each other (same classifier, same sample
  sizes), e.g. with the real-vs-real baselines in ``bench/embedded/weights/classifier.md``.

All functions except :func:`feature_stats` are pure (arrays in, numbers out).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


def class_histogram(logits: torch.Tensor | np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Counts of argmax predictions per class (int64 [num_classes])."""
    logits = np.asarray(logits)
    num_classes = num_classes or logits.shape[1]
    return np.bincount(logits.argmax(1), minlength=num_classes).astype(np.int64)


def class_shares(logits: torch.Tensor | np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Fraction of samples predicted as each class (float64, sums to 1)."""
    counts = class_histogram(logits, num_classes)
    return counts / max(counts.sum(), 1)


def mean_max_softmax(logits: torch.Tensor | np.ndarray) -> float:
    """Mean over samples of the top softmax probability (1 = always certain, 1/K = uniform)."""
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    return z.softmax(1).max(1).values.mean().item()


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, in float64 for a stable distance."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need [N>=2, D] features, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sym_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, method: str = "auto") -> float:
    """tr((sigma1 sigma2)^(1/2)) for PSD covariances.

    ``eigh`` uses tr(sqrt(sqrt(S1) S2 sqrt(S1))), a symmetric PSD matrix with the same eigenvalues
    as S1 S2, so only symmetric eigendecompositions are needed (no complex round-off).
    ``scipy`` uses scipy.linalg.sqrtm on the product, as pytorch-fid does; ``auto`` picks scipy
    when it is installed (it is not a declared dependency).
    """
    if method == "auto":
        try:
            import scipy.linalg  # noqa: F401
            method = "scipy"
        except ImportError:
            method = "eigh"
    if method == "eigh":
        r = _sym_sqrt(sigma1)
        w = np.linalg.eigvalsh(r @ sigma2 @ r)
        return float(np.sqrt(np.clip(w, 0, None)).sum())
    if method == "scipy":
        import scipy.linalg

        with warnings.catch_warnings():  # singular products (dead ReLU units) are expected; checked below
            warnings.simplefilter("ignore")
            covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():  # singular product: offset the diagonals (pytorch-fid's fix)
            off = np.eye(len(sigma1)) * 1e-6
            covmean = scipy.linalg.sqrtm((sigma1 + off) @ (sigma2 + off))
        return float(np.trace(np.real(covmean)))
    raise ValueError(f"unknown method {method!r}; valid: auto, eigh, scipy")


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     method: str = "auto") -> float:
    """||mu1-mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the FID formula, here in classifier-feature space."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"shape mismatch: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}")
    diff = mu1 - mu2
    d = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2, method)
    return max(float(d), 0.0)  # round-off can leave tiny negatives for identical inputs


@dataclass
class FeatureStats:
    """What the quality figures need from one image set."""

    mu: np.ndarray
    sigma: np.ndarray
    shares: np.ndarray
    confidence: float
    n: int


def classifier_outputs(images: torch.Tensor, model: torch.nn.Module | None = None, batch: int = 500
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features [N, D] and logits [N, K] of [N, 1, 32, 32] images in [-1, 1]."""
    if model is None:
        from bench.embedded.classifier import load_classifier
        model = load_classifier("cpu")
    model.eval()
    dev = next(model.parameters()).device
    feats, logits = [], []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            f = model.features(images[i : i + batch].to(dev).float())
            feats.append(f.double().cpu()); logits.append(model.head(f).double().cpu())
    return torch.cat(feats), torch.cat(logits)


def feature_stats(images: torch.Tensor, model: torch.nn.Module | None = None, batch: int = 500) -> FeatureStats:
    """Run the classifier (default: the committed one) over ``images`` and summarise them."""
    feats, logits = classifier_outputs(images, model, batch)
    mu, sigma = gaussian_stats(feats.numpy())
    return FeatureStats(mu, sigma, class_shares(logits.numpy()), mean_max_softmax(logits), len(images))


def fid_between(a: FeatureStats, b: FeatureStats, method: str = "auto") -> float:
    """FID in the classifier's penultimate feature space between two summarised image sets."""
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, method)


def stats_dict(s: FeatureStats, ref: FeatureStats | None = None) -> dict:
    """Class shares, classes present, confidence and (with ``ref``) FID as a JSON-able dict."""
    from bench.data.fashion_mnist import CLASS_NAMES

    d = {"n": s.n, "mean_confidence": round(s.confidence, 4),
         "class_shares": {CLASS_NAMES[i]: round(float(v), 4) for i, v in enumerate(s.shares)},
         "classes_present_ge_1pct": int((s.shares >= 0.01).sum()), "max_class_share": round(float(s.shares.max()), 4)}
    if ref is not None:
        d["fid_vs_test"] = round(fid_between(s, ref), 4)
    return d
