"""Measure the embedded world's quality figures and write them to results/embedded/.

    python -m bench.embedded.figures [--samples 10000] [--threads 2] [--out results/embedded]

- generator: an 8x8 sample grid; the classifier's predicted-class histogram over N samples
  (mode coverage); mean classifier confidence on samples vs real test images; FID in the
  classifier's penultimate feature space (not Inception FID) between samples and the test
  split, next to a held-out real set (training images) and the untrained generator;
- the regime the world puts ILO and SGILO in (k, p, n, m/p; bench/report/regime.py), beside FFHQ 1024's;
- in-range vs real: ILO reconstruction MSE of 30 real test images with every pixel observed,
  per round (how far real images lie from the generator's range at each layer).
Everything is written to ``quality.json``, and the model card ``generator.md`` (bench/embedded/weights/,
copied to the output folder) is written from it. The score priors' card is written by
``python -m bench.scores card`` from that pipeline's own measurements.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.data.fashion_mnist import load_tensor
from bench.embedded.quality import feature_stats, stats_dict
from bench.scores.evaluate import generator_images, save_grid

RESULTS = Path("results/embedded")


@torch.no_grad()
def proxy_samples(g, proxy, n: int, seed: int = 3, batch: int = 500) -> torch.Tensor:
    """Samples with w = proxy(z), z ~ N(0, I) (one z per image): the Gaussian-fit mapping that ILO's round 0
    optimises through, in place of the mapping network."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        w = proxy(torch.randn(b, 1, g.style_dim, generator=gen)).expand(b, g.n_latent, g.style_dim)
        out.append(g.synthesis(w, g.make_noise(b, generator=gen)).skip.clamp(-1, 1))
    return torch.cat(out)


def measure_generator(n: int, out: Path) -> dict:
    from bench.embedded.assets import load_embedded_generator
    from bench.embedded.train_gan import make_generator

    g, proxy, meta = load_embedded_generator()
    test_x, _ = load_tensor("test")
    train_x, _ = load_tensor("train")
    ref = feature_stats(test_x)
    heldout = feature_stats(train_x[torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:n]])
    samples = generator_images(g, n, seed=0)
    save_grid(samples, out / "generator_samples.png")
    torch.manual_seed(0)
    untrained = generator_images(make_generator().eval(), n, seed=0)
    res = {"generator_meta": meta, "samples": stats_dict(feature_stats(samples), ref), "real_test": stats_dict(ref),
           "real_train_heldout": stats_dict(heldout, ref), "untrained_generator": stats_dict(feature_stats(untrained), ref),
           "proxy_samples": stats_dict(feature_stats(proxy_samples(g, proxy, n)), ref)}
    return res


def measure_checkpoint(path: Path, n: int) -> dict:
    """The same sample statistics for a GAN training checkpoint's EMA generator, without installing it: how a
    longer (e.g. GPU-resumed) training run compares with the installed weights before anything downstream (score
    priors, sweeps) is redone on it."""
    from bench.embedded.train_gan import ema_generator

    state = torch.load(path, map_location="cpu", weights_only=False)
    g = ema_generator(state)
    ref = feature_stats(load_tensor("test")[0])
    batch = state.get("batch", 32)  # checkpoints written before the batch was stored: the committed runs' 32
    return {"checkpoint": str(path), "kimg": round(state["iter"] * batch / 1000, 3), "iterations": state["iter"],
            "train_minutes": round(state["seconds"] / 60, 1), "device": state.get("device", "cpu"),
            "samples": stats_dict(feature_stats(generator_images(g, n, seed=0)), ref)}


def measure_in_range(out: Path, steps: tuple[int, ...] = (100, 100, 100)) -> dict:
    from bench.data.evalset import load_evalset
    from bench.priors.catalog import load_prior
    from bench.scores.invert import invert_batch

    prior = load_prior("embedded")
    x, _ = load_evalset("test")
    res = {}
    for r in range(1, len(steps) + 1):  # ILO-unregularized with rounds 0..r-1, every pixel observed
        _, mse = invert_batch(prior, x, list(range(len(x))), steps=steps[:r])
        res[f"rounds_0_to_{r - 1}"] = {"mean_mse": float(f"{float(mse.mean()):.4g}"), "n": len(x)}
    return res


def _shares_line(d: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in d["class_shares"].items())


def _stats_row(label: str, d: dict, extra: str = "") -> str:
    fid = d.get("fid_vs_test", 0)
    return (f"| {label} | {d['n']} | {d['classes_present_ge_1pct']} | {d['max_class_share']} | "
            f"{d['mean_confidence']} | {fid}{extra} |")


STATS_HEADER = ["| image set | n | classes present (>= 1%) | max class share | mean confidence | FID vs test |",
                "|---|---|---|---|---|---|"]

def _training_line(meta: dict) -> str:
    dev, iters, minutes = meta.get("device", "cpu"), meta.get("iterations", 0), meta.get("train_minutes", 0)
    if meta.get("history"):  # a run that moved between devices: no single device or rate describes it
        return (f"- Trained: {meta.get('kimg', '?')} kimg ({iters} iterations of batch 32), {minutes} minutes of wall "
                f"time in all: {meta['history']}; resumable, so it can run in pieces")
    rate = f" ({minutes * 60 / iters:.2f} s/iteration)" if iters and minutes else ""
    return (f"- Trained: {meta.get('kimg', '?')} kimg ({iters} iterations of batch 32) in {minutes} minutes of wall "
            f"time on device `{dev}`{' (2 CPU cores, sharing them with other work part of the time)' if dev == 'cpu' else ''}"
            f"{rate}; resumable, so it can run in pieces")


def _regime_lines() -> list[str]:
    """The regime table of this world and of FFHQ 1024 (from the generator configs alone)."""
    from bench.embedded.assets import load_embedded_generator
    from bench.priors.ffhq import FFHQ_CONFIG
    from bench.priors.stylegan2 import generator_config
    from bench.report.regime import regime_markdown, regime_rows

    g, _, _ = load_embedded_generator()
    return ["", "## Regime (`python -m bench.report.regime`)", "",
            "ILO and SGILO presuppose latent size k < optimised state size p << pixel count n, and measurements m "
            "not far below p. The states listed are those the default grids and the ILO paper schedule optimise; "
            "m/p at every default level:", "",
            regime_markdown("embedded (this world)", regime_rows("embedded", generator_config(g))), "",
            regime_markdown("ffhq 1024 (the paper's world)", regime_rows("ffhq", dict(FFHQ_CONFIG)))]


def _in_range_lines(res: dict) -> list[str]:
    if "in_range_vs_real" not in res:
        return []
    from bench.embedded.assets import load_embedded_generator

    g, _, _ = load_embedded_generator()
    shapes = ", ".join("x".join(map(str, g.layer_shape(k))) for k in range(len(res["in_range_vs_real"]) - 1))
    lines = ["", "## In-range vs real", "",
             "ILO-unregularized on the 30 committed test images with every pixel observed (100 steps per round). "
             "Round 0 optimises the z-space latent (through the Gaussian-fit mapping proxy) and the noise maps; round "
             f"r >= 1 also the state after layer r-1 ({shapes}):", "",
             "| rounds | mean MSE |", "|---|---|"]
    return lines + [f"| {k.replace('rounds_', '').replace('_', ' ')} | {v['mean_mse']} |"
                    for k, v in res["in_range_vs_real"].items()]


def write_generator_card(res: dict, path: Path) -> Path:
    """The generator's model card, every number read from the measurements in ``res``."""
    from bench.embedded.assets import load_embedded_generator
    from bench.priors.stylegan2 import generator_config

    g, _, meta = load_embedded_generator()
    n_params = sum(p.numel() for p in g.parameters())
    gm = res["generator"]
    s, real, held, untrained = gm["samples"], gm["real_test"], gm["real_train_heldout"], gm["untrained_generator"]
    dev = meta.get("device", "cpu")
    lines = [
        "# Embedded generator: StyleGAN-2, Fashion-MNIST 32x32, 1 channel", "",
        f"- Training command: `python -m bench.embedded train --stage gan --device {dev}` then `--stage export` "
        "(resumable; checkpoints every 100 iterations)",
        "- Data: Fashion-MNIST training split (60k images, Debian package `dataset-fashion-mnist`), 28x28 padded to 32x32, [-1, 1]",
        f"- Architecture: our StyleGAN-2 (`bench/priors/stylegan2.py`), config {generator_config(g)}; "
        f"{n_params:,} parameters (EMA weights); Gaussian-fit mapping proxy stored in the same file",
        "- Objective: non-saturating GAN loss, lazy R1 (gamma 0.1 every 16 steps), style mixing 0.5, Adam (0, 0.99), lr 0.002, "
        "batch 32, EMA with ramp-up",
        _training_line(meta), "",
        "## Measured (`python -m bench.embedded.figures`)", "",
        f"Classifier statistics over {s['n']} samples (classifier: `classifier.md`); FID is computed in the classifier's "
        "128-d penultimate feature space against the 10k test split (not Inception FID).", "",
        *STATS_HEADER,
        _stats_row("generator samples", s), _stats_row("real held-out (train images)", held),
        _stats_row("untrained generator", untrained), _stats_row("real test split", real),
        *([_stats_row("samples through the Gaussian-fit mapping proxy (w = proxy(z))", gm["proxy_samples"])]
          if "proxy_samples" in gm else []), "",
        f"Predicted-class shares of the samples: {_shares_line(s)}.", "",
        "The proxy row: ILO and SGILO's round 0 optimise z through w = lrelu(std * z + mean), a per-dimension Gaussian "
        "fit of the mapping network's pre-activation outputs; sampling z ~ N(0, I) through it ignores the correlations "
        "between w's dimensions, so its samples are further from the data than the mapping network's.", "",
        "Sample grid: `results/embedded/generator_samples.png`.",
        *_regime_lines(), *_in_range_lines(res),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_cards(res: dict, out: Path) -> None:
    from bench.core.assets import EMBEDDED_DIR

    if "generator" in res:
        card = write_generator_card(res, EMBEDDED_DIR / "generator.md")
        (out / "generator.md").write_text(card.read_text())


def main(argv: list[str] | None = None) -> int:
    from bench.core.runtime import init_process

    init_process()
    p = argparse.ArgumentParser(prog="python -m bench.embedded.figures", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--skip", nargs="*", default=[], choices=["generator", "in_range"])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--checkpoint", nargs="*", default=None, metavar="CKPT",
                   help="only measure these GAN training checkpoints' EMA generators (appended to "
                        "OUT/gan_checkpoints.json; the installed weights and cards are left alone)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.checkpoint:
        path = out / "gan_checkpoints.json"
        rows = json.loads(path.read_text()) if path.exists() else []
        for ckpt in a.checkpoint:
            rows.append(measure_checkpoint(Path(ckpt), a.samples))
            path.write_text(json.dumps(rows, indent=1))
            print(json.dumps({k: rows[-1][k] for k in ("kimg", "device")} | {"fid_vs_test": rows[-1]["samples"]["fid_vs_test"]}))
        return 0
    path = out / "quality.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    res.pop("scores", None)  # measured by `python -m bench.scores evaluate` now (bench/scores/card.py)
    stages = {"generator": lambda: measure_generator(a.samples, out),
              "in_range_vs_real": lambda: measure_in_range(out)}
    for key, measure in stages.items():
        if key.removesuffix("_vs_real") not in a.skip:
            res[key] = measure()
            path.write_text(json.dumps(res, indent=1))  # after each stage: a killed run keeps what it measured
    write_cards(res, out)
    print(json.dumps(res, indent=1)[:3000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
