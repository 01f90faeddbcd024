"""Measure the embedded world's quality figures and write them to results/embedded/.

    python -m bench.embedded.figures [--samples 10000] [--score-samples 1000] [--threads 2]
        [--extra-scores FILE ...] [--out results/embedded]

- generator: an 8x8 sample grid; the classifier's predicted-class histogram over N samples
  (mode coverage); mean classifier confidence on samples vs real test images; FID in the
  classifier's penultimate feature space (not Inception FID) between samples and the test
  split, next to a held-out real set (training images) and the untrained generator;
- score priors: a grid of annealed-Langevin samples of the modelled layer, decoded by the
  generator (the paper's Figure 4), with the same classifier statistics, for the committed
  priors and for ``--extra-scores`` files (e.g. the syn-trained variants, measured, not committed);
- in-range vs real: ILO reconstruction MSE of 30 real test images with every pixel observed,
  per round (how far real images lie from the generator's range at each layer).
Everything is written to ``quality.json``, and the model cards ``generator.md`` and ``scores.md``
(bench/embedded/weights/, copied to the output folder) are written from it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.data.fashion_mnist import load_tensor
from bench.embedded.quality import feature_stats, stats_dict
from bench.scores.evaluate import decode_states, langevin_images, ordinary_styles, save_grid

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
    samples = generator_samples(g, n)
    save_grid(samples, out / "generator_samples.png")
    torch.manual_seed(0)
    untrained = generator_samples(make_generator().eval(), n)
    res = {"generator_meta": meta, "samples": stats_dict(feature_stats(samples), ref), "real_test": stats_dict(ref),
           "real_train_heldout": stats_dict(heldout, ref), "untrained_generator": stats_dict(feature_stats(untrained), ref),
           "proxy_samples": stats_dict(feature_stats(proxy_samples(g, proxy, n)), ref)}
    return res


EPS_TIMES = (0.01, 0.1, 1.0)


@torch.no_grad()
def eps_diagnostics(sp, g, n: int = 256, times: tuple[float, ...] = EPS_TIMES) -> dict:
    """On ``n`` syn activations of ``sp``'s layer: the noise-prediction MSE at fixed diffusion times (at t = 1
    the data is scaled by exp(c(1)) ~ 0.007, so an exact model's error there is < 1e-4 whatever the data),
    and the network's sensitivity to t: mean |eps(y_t, 1) - eps(y_t, t0)| / mean |eps(y_t, t0)| for the
    inputs y_t of the first time t0 (an exact model's eps changes by O(1) between these times)."""
    from bench.priors.sde import batch_broadcast
    from bench.scores.train import build_syn_dataset

    y = sp.normalize(build_syn_dataset(g, sp.layer, n, generator=torch.Generator().manual_seed(9)))
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(10))
    mse, first = {}, None
    for t in times:
        tv = torch.full((n,), t)
        yt = batch_broadcast(sp.sde.mean_coeff(tv), y) * y + batch_broadcast(sp.sde.marginal_std(tv), y) * z
        mse[f"t={t}"] = round(float((sp.eps(yt, tv) - z).pow(2).mean()), 4)
        first = yt if first is None else first
    e0, e1 = sp.eps(first, torch.full((n,), times[0])), sp.eps(first, torch.full((n,), 1.0))
    return {"eps_mse_on_syn": mse, "time_sensitivity": round(float((e1 - e0).abs().mean() / e0.abs().mean()), 4)}


def measure_one_score(sp, g, n: int, ref, grid: Path) -> dict:
    t0 = time.time()
    img = langevin_images(sp, g, n, seed=sp.layer)
    save_grid(img, grid)
    meta = {k: v for k, v in sp.metadata.items() if isinstance(v, (int, float, str))}
    return {"metadata": meta, "layer": sp.layer, "state_shape": list(sp.config.shape),
            "parameters": sum(p.numel() for p in sp.model.parameters()), "grid": str(grid),
            **eps_diagnostics(sp, g),
            "langevin_samples": stats_dict(feature_stats(img), ref), "sampling_seconds": round(time.time() - t0, 1)}


def decoded_generator_states(g, n: int, layer: int, seed: int = 2) -> torch.Tensor:
    """The generator's own layer-``layer`` states of ``n`` ordinary samples (the syn priors' training data),
    decoded as the Langevin samples are: what a perfect score prior of syn activations would give."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        h = g.split(ordinary_styles(g, n, gen), g.make_noise(n, generator=gen), layer).features
    return decode_states(g, h, layer, gen)


def score_reference(g, n: int, ref, layers) -> dict:
    """Same-size baselines for the Langevin statistics (FID in 128-d is biased upwards at small n):
    ``n`` real held-out training images, ``n`` ordinary generator samples, and ``n`` of the generator's
    own layer-k states decoded like the Langevin samples."""
    train_x, _ = load_tensor("train")
    idx = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(1))[:n]
    res = {"real_train_heldout": stats_dict(feature_stats(train_x[idx]), ref),
           "generator_samples": stats_dict(feature_stats(generator_samples(g, n, seed=1)), ref)}
    for k in layers:
        res[f"generator_layer{k}_redecoded"] = stats_dict(feature_stats(decoded_generator_states(g, n, k)), ref)
    return res


def measure_scores(n: int, out: Path, extra: list[str] = ()) -> dict:
    """The committed score priors (grids ``score_layer{k}_samples.png``) and, labelled by their
    training source, any ``extra`` score files (grids ``score_{source}_layer{k}_samples.png``)."""
    from bench.embedded.assets import load_embedded_generator
    from bench.priors.catalog import load_prior
    from bench.priors.score_prior import ScorePrior

    g, _, _ = load_embedded_generator()
    ref = feature_stats(load_tensor("test")[0])
    scores = load_prior("embedded").scores
    res = {"n": n, "reference": score_reference(g, n, ref, sorted(scores)), "committed": {}, "extra": {}}
    for layer, sp in sorted(scores.items()):
        res["committed"][f"layer{layer}"] = measure_one_score(sp, g, n, ref, out / f"score_layer{layer}_samples.png")
    for path in extra:
        sp = ScorePrior.load(path)
        label = f"{sp.metadata.get('source', 'extra')}_layer{sp.layer}"
        res["extra"][label] = {**measure_one_score(sp, g, n, ref, out / f"score_{label}_samples.png"), "file": str(path)}
    return res


def measure_in_range(out: Path, steps: tuple[int, ...] = (100, 100, 100, 100)) -> dict:
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

# The committed generator's training hardware (the checkpoint records only the torch device) and the
# speed of the same command on this project's 2-core CPU machine, measured there (0.72 s/iteration).
DEVICE_NAMES = {"cuda": "one NVIDIA H100 GPU"}
CPU_SECONDS_PER_ITERATION = 0.72


def _training_line(meta: dict) -> str:
    dev = meta.get("device", "cpu")
    where = f"device `{dev}`" + (f" ({DEVICE_NAMES[dev]})" if dev in DEVICE_NAMES else "")
    iters = meta.get("iterations", 0)
    cpu_hours = iters * CPU_SECONDS_PER_ITERATION / 3600
    return (f"- Trained: {meta.get('kimg', '?')} kimg ({iters} iterations of batch 32) in {meta.get('train_minutes', '?')} "
            f"minutes of wall time on {where}. The same command on 2 CPU cores runs at about "
            f"{CPU_SECONDS_PER_ITERATION} s/iteration, i.e. ~{cpu_hours:.1f} h for these {meta.get('kimg', '?')} kimg "
            "(resumable, so it can run in pieces)")


def _in_range_lines(res: dict) -> list[str]:
    if "in_range_vs_real" not in res:
        return []
    lines = ["", "## In-range vs real", "",
             "ILO-unregularized on the 30 committed test images with every pixel observed (100 steps per round). "
             "Round 0 optimises the z-space latent (through the Gaussian-fit mapping proxy) and the noise maps; round "
             "r >= 1 also the state after layer r-1 (layers 0, 1, 2: 128x4x4, 128x8x8, 128x16x16):", "",
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
        *_in_range_lines(res),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# How the committed score priors' training data was made (measured when it was made; the inversion
# files are not committed): `python -m bench.embedded train --stage invert --inversions 5000 --device cuda`.
INVERSIONS = {"n": 5000, "rounds": "(60, 60, 60)", "lr": 0.1, "mse_mean": 0.00111, "mse_median": 0.00068,
              "seconds": 48, "device": "one NVIDIA H100 GPU"}


def _score_training_lines(sc: dict) -> list[str]:
    inv = INVERSIONS
    return [
        "- Training commands: `python -m bench.embedded train --stage invert --inversions "
        f"{inv['n']} --device cuda`, then `python -m bench.embedded train --stage score --device cuda --score-minutes 4.3` "
        "(trains layers 0 and 1 with `bench/train_score.py --source ilo` and copies them here)",
        f"- Data: {inv['n']} ILO-unregularized inversions of Fashion-MNIST **training** images (a seeded random subset; "
        f"never test images), every pixel observed, rounds {inv['rounds']} at lr {inv['lr']}; the state after layers 0 "
        f"and 1 of each inversion is kept. Per-image inversion MSE: mean {inv['mse_mean']}, median {inv['mse_median']} "
        f"({inv['seconds']} s for all {inv['n']} on {inv['device']})",
        "- Hardware: " + INVERSIONS["device"] + ", four score trainings sharing it (these two and the syn variants below), "
        "a 4.3-minute wall budget each",
        "- Model: SGILO's score ViT (`bench/priors/score_vit.py`, dim 128, depth 4, 2 heads, patch 1), VP-SDE "
        "(beta 0.1 -> 20), denoising score matching with likelihood weighting by importance sampling of t, "
        "EMA 0.999 (EMA weights saved), batch 64, lr 2e-4; data normalised to [0, 1] with stored statistics",
        "", *TRAIN_HEADER,
        *[_score_train_row(f"`score_{k}.pt`", v) for k, v in sc["committed"].items()],
        "", EPS_NOTE,
    ]


TRAIN_HEADER = ["| prior | state | parameters | steps | finished | wall (min) | final eval DSM (EMA, uniform t) | "
                "final train loss | " + " | ".join(f"eps MSE t={t}" for t in EPS_TIMES) + " | t-sensitivity |",
                "|---" * (9 + len(EPS_TIMES)) + "|"]


EPS_NOTE = ("\"eps MSE t=...\": the noise-prediction error at a fixed diffusion time on 256 syn activations of the "
            "layer. At t = 1 the data is scaled by ~0.007, so an exact model's error there is < 1e-4 whatever the data. "
            "\"t-sensitivity\": mean |eps(y, t=1) - eps(y, t=0.01)| / mean |eps(y, t=0.01)| on the same inputs y "
            "(an exact model's changes by O(1)). The official ViT (re-implemented here) feeds t only as one scalar "
            "offset per token, and every PreNorm LayerNorm subtracts a token's mean, so the network sees t only "
            "through a fixed output direction: it is nearly blind to t and learns one compromise denoiser, whose "
            "error floor is the t = 1 column. SGILO's hot sampler queries it at t = 0.01 only; annealed Langevin, "
            "which needs the score at every noise level, is where this shows (below).")


def _score_train_row(label: str, v: dict) -> str:
    m = v["metadata"]
    shape = "x".join(str(i) for i in v["state_shape"])
    eps = " | ".join(f"{e}" for e in v["eps_mse_on_syn"].values())
    return (f"| {label} | {shape} | {v['parameters']:,} | {m['steps']} | {m['finished']} | {m['seconds'] / 60:.1f} | "
            f"{m['final_eval_dsm']:.4f} | {m['final_train_loss']:.4f} | {eps} | {v['time_sensitivity']} |")


def _langevin_lines(sc: dict) -> list[str]:
    rows = [_stats_row(f"annealed Langevin, ilo layer {v['layer']} (committed)", v["langevin_samples"])
            for v in sc["committed"].values()]
    rows += [_stats_row(f"annealed Langevin, {k.replace('_layer', ' layer ')} (not committed)", v["langevin_samples"])
             for k, v in sc["extra"].items()]
    ref = sc["reference"]
    rows += [_stats_row(f"generator's own layer-{k.removeprefix('generator_layer').removesuffix('_redecoded')} states, "
                        "decoded the same way", v) for k, v in ref.items() if k.endswith("_redecoded")]
    rows += [_stats_row("ordinary generator samples", ref["generator_samples"]),
             _stats_row("real held-out (train images)", ref["real_train_heldout"])]
    shares = [f"- {'ilo_' * (k in sc['committed'])}{k}: {_shares_line(v['langevin_samples'])}"
              for k, v in {**sc["committed"], **sc["extra"]}.items()]
    grids = [f"`{Path(v['grid']).as_posix()}`" for v in {**sc["committed"], **sc["extra"]}.values()]
    return ["", "## Annealed-Langevin samples (the paper's Figure 4)", "",
            f"{sc['n']} samples per prior: score_sde's annealed Langevin dynamics in the normalised layer space "
            "(100 noise levels x 5 steps, snr 0.16, Tweedie denoising at the end), decoded by the rest of the generator "
            "with one mapping-network style per image (a new z) and fresh noise. Classifier statistics as in `generator.md` "
            "(FID in the classifier's 128-d feature space vs the 10k test split; at this n it is biased upwards, "
            "so compare with the same-size baselines in the last rows). Decoding drops the skip (RGB) sum of the "
            "layers before, as ILO/SGILO's rounds do, and draws a new style: the rows \"generator's own layer-k states, "
            "decoded the same way\" show what that alone costs, i.e. the best a score prior of that layer can reach here.", "",
            *STATS_HEADER, *rows, "", "Predicted-class shares:", "", *shares, "", "Grids (first 64 samples): " + ", ".join(grids) + "."]


def _syn_lines(sc: dict) -> list[str]:
    if not sc["extra"]:
        return []
    return ["", "## For comparison: the same priors trained on syn activations (not committed)", "",
            "Trained like the committed ones but on fresh generator samples' activations (`bench/train_score.py --source syn "
            "--generator bench/embedded/weights/generator.pt --device cuda --minutes 4.3`), on the same GPU at the same time; "
            "measured with `python -m bench.embedded.figures --extra-scores FILE...`.", "",
            *TRAIN_HEADER,
            *[_score_train_row(k, v) for k, v in sc["extra"].items()],
            "", "Eval DSM losses are each measured on the prior's own data (ILO inversions vs syn activations), "
            "so they are not directly comparable across sources."]


def write_scores_card(res: dict, path: Path) -> Path:
    """The score priors' model card (committed ilo priors, plus measured extras), from ``res["scores"]``."""
    sc = res["scores"]
    lines = ["# Embedded score priors (SGILO): layers 0 (128x4x4) and 1 (128x8x8)", "",
             "Score models of the generator's state after layer 0 and after layer 1: what SGILO's rounds 1 and 2 "
             "optimise, the analogue of the official `layer1`/`layer2` FFHQ score models. Loaded by "
             "`load_prior(\"embedded\").scores[k]` from `score_layer{k}.pt`; metadata inside each file (key `metadata`).", "",
             *_score_training_lines(sc), *_langevin_lines(sc), *_syn_lines(sc)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_cards(res: dict, out: Path) -> None:
    from bench.core.assets import EMBEDDED_DIR

    if "generator" in res:
        card = write_generator_card(res, EMBEDDED_DIR / "generator.md")
        (out / "generator.md").write_text(card.read_text())
    if "committed" in res.get("scores", {}):
        card = write_scores_card(res, EMBEDDED_DIR / "scores.md")
        (out / "scores.md").write_text(card.read_text())


def main(argv: list[str] | None = None) -> int:
    from bench.core.runtime import init_process

    init_process()
    p = argparse.ArgumentParser(prog="python -m bench.embedded.figures", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--score-samples", type=int, default=1000, help="annealed-Langevin samples per score prior")
    p.add_argument("--extra-scores", nargs="*", default=[], metavar="FILE",
                   help="more score_prior.pt files to measure (e.g. syn-trained variants), labelled by their source")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--skip", nargs="*", default=[], choices=["generator", "scores", "in_range"])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "quality.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    stages = {"generator": lambda: measure_generator(a.samples, out),
              "in_range_vs_real": lambda: measure_in_range(out),
              "scores": lambda: measure_scores(a.score_samples, out, a.extra_scores)}
    for key, measure in stages.items():
        if key.removesuffix("_vs_real") not in a.skip:
            res[key] = measure()
            path.write_text(json.dumps(res, indent=1))  # after each stage: a killed run keeps what it measured
    write_cards(res, out)
    print(json.dumps(res, indent=1)[:3000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
