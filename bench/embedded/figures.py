"""Measure the embedded world's quality figures and write them to results/embedded/.

    python -m bench.embedded.figures [--samples 10000] [--out results/embedded]

- generator: an 8x8 sample grid; the classifier's predicted-class histogram over N samples
  (mode coverage); mean classifier confidence on samples vs real test images; FID in the
  classifier's penultimate feature space (not Inception FID) between samples and the test
  split, next to a held-out real set (training images) and the untrained generator;
- score priors: a grid of annealed-Langevin samples of the modelled layer, decoded by the
  generator (the paper's Figure 4), with the same classifier statistics;
- in-range vs real: ILO reconstruction MSE of 30 real test images with every pixel observed,
  per round (how far real images lie from the generator's range at each layer).
Everything is written to ``quality.json`` as well, so the model cards quote measured numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from bench.data.fashion_mnist import CLASS_NAMES, load_tensor
from bench.embedded.quality import feature_stats, fid_between

RESULTS = Path("results/embedded")


@torch.no_grad()
def generator_samples(g, n: int, seed: int = 0, batch: int = 500) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), g.style_dim, generator=gen)
        img, _ = g(z, noise=g.make_noise(len(z), generator=gen))
        out.append(img.clamp(-1, 1))
    return torch.cat(out)


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    from PIL import Image

    imgs = ((images[: nrow * nrow].clamp(-1, 1) + 1) * 127.5).round().byte().cpu()
    n, c, h, w = imgs.shape
    rows = math.ceil(n / nrow)
    canvas = torch.full((c, rows * (h + 2) + 2, nrow * (w + 2) + 2), 255, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[:, 2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + col * (w + 2) : 2 + col * (w + 2) + w] = imgs[i]
    arr = canvas.permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[..., 0] if c == 1 else arr).resize((arr.shape[1] * 2, arr.shape[0] * 2), Image.NEAREST).save(path)
    return path


def stats_dict(s, ref=None) -> dict:
    d = {"n": s.n, "mean_confidence": round(s.confidence, 4),
         "class_shares": {CLASS_NAMES[i]: round(float(v), 4) for i, v in enumerate(s.shares)},
         "classes_present_ge_1pct": int((s.shares >= 0.01).sum()), "max_class_share": round(float(s.shares.max()), 4)}
    if ref is not None:
        d["fid_vs_test"] = round(fid_between(s, ref), 4)
    return d


def measure_generator(n: int, out: Path) -> dict:
    from bench.embedded.assets import load_embedded_generator
    from bench.embedded.train_gan import make_generator

    g, _, meta = load_embedded_generator()
    test_x, _ = load_tensor("test")
    train_x, _ = load_tensor("train")
    ref = feature_stats(test_x)
    heldout = feature_stats(train_x[torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:n]])
    samples = generator_samples(g, n)
    save_grid(samples, out / "generator_samples.png")
    torch.manual_seed(0)
    untrained = generator_samples(make_generator().eval(), n)
    res = {"generator_meta": meta, "samples": stats_dict(feature_stats(samples), ref), "real_test": stats_dict(ref),
           "real_train_heldout": stats_dict(heldout, ref), "untrained_generator": stats_dict(feature_stats(untrained), ref)}
    return res


def measure_scores(n: int, out: Path) -> dict:
    from bench.priors.catalog import load_prior
    from bench.priors.samplers import sample_layer
    from bench.priors.stylegan2 import LayerState

    prior = load_prior("embedded")
    g = prior.generator
    test_x, _ = load_tensor("test")
    ref = feature_stats(test_x)
    res = {}
    for layer, sp in sorted(prior.scores.items()):
        t0 = time.time()
        gen = torch.Generator().manual_seed(layer)
        h = sample_layer(sp, n, method="ald", generator=gen)
        # decode: the rest of the generator from this layer, with mean-latent styles and fresh noise
        z = torch.randn(n, 1, g.style_dim, generator=gen).expand(n, g.n_latent, g.style_dim)
        w = prior.proxy(z)  # one style per image, as for an ordinary sample
        with torch.no_grad():
            img = g.resume(LayerState(h, None, layer), w, g.make_noise(n, generator=gen), skip_mode="official").clamp(-1, 1)
        save_grid(img, out / f"score_layer{layer}_samples.png")
        res[f"layer{layer}"] = {"metadata": {k: v for k, v in sp.metadata.items() if isinstance(v, (int, float, str))},
                                "langevin_samples": stats_dict(feature_stats(img), ref),
                                "sampling_seconds": round(time.time() - t0, 1)}
    return res


def measure_in_range(out: Path, steps: tuple[int, ...] = (100, 100, 100, 100)) -> dict:
    from bench.data.evalset import load_evalset
    from bench.embedded.invert import invert_batch
    from bench.priors.catalog import load_prior

    prior = load_prior("embedded")
    x, _ = load_evalset("test")
    res = {}
    for r in range(1, len(steps) + 1):  # ILO-unregularized with rounds 0..r-1, every pixel observed
        _, mse = invert_batch(prior, x, list(range(len(x))), steps=steps[:r])
        res[f"rounds_0_to_{r - 1}"] = {"mean_mse": round(float(mse.mean()), 5), "n": len(x)}
    return res


def _shares_line(d: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in d["class_shares"].items())


def write_generator_card(res: dict, path: Path) -> Path:
    """The generator's model card, every number read from the measurements in ``res``."""
    from bench.embedded.assets import load_embedded_generator

    from bench.priors.stylegan2 import generator_config

    g, _, meta = load_embedded_generator()
    meta = {**meta, "config": generator_config(g)}
    n_params = sum(p.numel() for p in g.parameters())
    gm = res["generator"]
    s, real, held, untrained = gm["samples"], gm["real_test"], gm["real_train_heldout"], gm["untrained_generator"]
    lines = [
        "# Embedded generator: StyleGAN-2, Fashion-MNIST 32x32, 1 channel", "",
        "- Training command: `python -m bench.embedded train --stage gan` then `--stage export` "
        "(resumable; checkpoints every 100 iterations)",
        "- Data: Fashion-MNIST training split (60k images, Debian package `dataset-fashion-mnist`), 28x28 padded to 32x32, [-1, 1]",
        f"- Architecture: our StyleGAN-2 (`bench/priors/stylegan2.py`), config {meta.get('config', '') or 'see generator.pt'}; "
        f"{n_params:,} parameters (EMA weights); Gaussian-fit mapping proxy stored in the same file",
        "- Objective: non-saturating GAN loss, lazy R1 (gamma 0.1 every 16 steps), style mixing 0.5, Adam (0, 0.99), lr 0.002, "
        "batch 32, EMA with ramp-up",
        f"- Trained: {meta.get('kimg', '?')} kimg ({meta.get('iterations', '?')} iterations) in {meta.get('train_minutes', '?')} "
        "minutes of wall time on 2 shared CPU cores", "",
        "## Measured (`python -m bench.embedded.figures`)", "",
        f"Classifier statistics over {s['n']} samples (classifier: `classifier.md`); FID is computed in the classifier's "
        "128-d penultimate feature space against the 10k test split (not Inception FID).", "",
        "| image set | classes present (>= 1%) | max class share | mean confidence | FID vs test |",
        "|---|---|---|---|---|",
        f"| generator samples | {s['classes_present_ge_1pct']} | {s['max_class_share']} | {s['mean_confidence']} | {s['fid_vs_test']} |",
        f"| real held-out (train images) | {held['classes_present_ge_1pct']} | {held['max_class_share']} | {held['mean_confidence']} | {held['fid_vs_test']} |",
        f"| untrained generator | {untrained['classes_present_ge_1pct']} | {untrained['max_class_share']} | {untrained['mean_confidence']} | {untrained['fid_vs_test']} |",
        f"| real test split | {real['classes_present_ge_1pct']} | {real['max_class_share']} | {real['mean_confidence']} | 0 |", "",
        f"Predicted-class shares of the samples: {_shares_line(s)}.", "",
        "Sample grid: `results/embedded/generator_samples.png`.",
    ]
    if "in_range_vs_real" in res:
        lines += ["", "## In-range vs real", "",
                  "ILO-unregularized on the 30 committed test images with every pixel observed (100 steps per round):", "",
                  "| rounds | mean MSE |", "|---|---|"]
        lines += [f"| {k.replace('rounds_', '').replace('_', ' ')} | {v['mean_mse']} |" for k, v in res["in_range_vs_real"].items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--score-samples", type=int, default=64)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--skip", nargs="*", default=[], choices=["generator", "scores", "in_range"])
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "quality.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    if "generator" not in a.skip:
        res["generator"] = measure_generator(a.samples, out)
    if "scores" not in a.skip:
        res["scores"] = measure_scores(a.score_samples, out)
    if "in_range" not in a.skip:
        res["in_range_vs_real"] = measure_in_range(out)
    path.write_text(json.dumps(res, indent=1))
    if "generator" in res:
        from bench.assets import EMBEDDED_DIR

        card = write_generator_card(res, EMBEDDED_DIR / "generator.md")
        (out / "generator.md").write_text(card.read_text())
    print(json.dumps(res, indent=1)[:3000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
