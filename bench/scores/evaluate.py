"""The evaluate stage: is a layer's score model a prior of that layer?

Measured on held-out real states (ILO inversions of training images the model never saw) and on
samples of the layer decoded by the generator (the paper's Figure 4; the samplers: :data:`SAMPLERS`):

* noise-prediction error E|eps_theta(y_t, t) - z|^2 at t = 0.01, 0.1, 0.5 on held-out states; the
  trivial predictor (always 0) has error 1.0 at every t;
* time sensitivity: mean |eps(y_t, 1) - eps(y_t, 0.01)| / mean |eps(y_t, 0.01)| on the same inputs
  (an exact model changes by O(1); the official ViT barely sees t, see bench/priors/score_vit.py);
* decoded samples vs the same held-out real states decoded the same way (fresh style and noise,
  the skip sum of earlier layers dropped, as ILO/SGILO's rounds do), with the world's quality
  measure when it has one (embedded: classifier-space FID, class shares, confidence);
* the training curve (held-out DSM per logged step) and whether it had flattened.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

EPS_TIMES = (0.01, 0.1, 0.5)


def ordinary_styles(g, n: int, gen: torch.Generator) -> torch.Tensor:
    """W+ styles of ``n`` ordinary samples: one mapping-network style per image, broadcast to every layer."""
    with torch.no_grad():
        return g.get_latent(torch.randn(n, g.style_dim, generator=gen))[:, None].expand(n, g.n_latent, g.style_dim)


def mean_styles(g, n: int, n_fit: int = 10_000, seed: int = 12) -> torch.Tensor:
    """The average mapping-network style, broadcast to ``n`` images and every layer."""
    with torch.no_grad():
        w = g.get_latent(torch.randn(n_fit, g.style_dim, generator=torch.Generator().manual_seed(seed))).mean(0)
    return w[None, None].expand(n, g.n_latent, g.style_dim)


@torch.no_grad()
def decode_states(g, h: torch.Tensor, layer: int, gen: torch.Generator, style: str = "fresh",
                  rgb: str = "dropped") -> torch.Tensor:
    """The rest of the generator from ``layer``. ``rgb``: "dropped" = the RGB skip sum restarts after the layer,
    as ILO/SGILO's rounds do (the state's own ToRGB term and the layers' before are lost); "own" = the sum starts
    from the state's own ToRGB term (``Generator.layer_rgb``), all of the image the state determines (only the
    terms of the layers before it are missing). ``style``: "fresh" = an ordinary style per image (the bars'
    decode), "mean" = the average style for every image, so that the later layers add as little content of their
    own as the generator allows (a diagnostic: does the decode or the state decide the class?)."""
    from bench.priors.stylegan2 import LayerState

    n = len(h)
    if style not in ("fresh", "mean"):
        raise ValueError(f"style must be 'fresh' or 'mean', got {style!r}")
    if rgb not in DECODE_RGB:
        raise ValueError(f"rgb must be one of {DECODE_RGB}, got {rgb!r}")
    w = ordinary_styles(g, n, gen) if style == "fresh" else mean_styles(g, n)
    skip = g.layer_rgb(layer, h, w) if rgb == "own" else None
    return g.resume(LayerState(h, skip, layer), w, g.make_noise(n, generator=gen),
                    skip_mode="exact" if rgb == "own" else "official").clamp(-1, 1)


DECODE_RGB = ("dropped", "own")


# The samplers of the decoded-sample statistics. "pc" (the bars'): score_sde's predictor-corrector sampler, a
# reverse-diffusion predictor step and 5 annealed-Langevin corrector steps (snr 0.16) at each of 500 times from
# T to 0.01, then Tweedie denoising. "ald": annealed Langevin alone (the corrector without the predictor; the
# paper's Figure 4 names Song & Ermon's ALD), 100 levels x 5 steps, snr 0.16. Why the bars use "pc": on the VP
# SDE each level's marginal is the data SHRUNK by mean_coeff(t) plus noise, so corrector-only ALD must move every
# sample outward by Langevin diffusion alone between levels; with a few steps per level it lags, and its samples
# come out over-dispersed (measured on the layer-1 prior, 200 samples: per-dimension spread 1.44x the real
# states', decoded FID 48.0; PC at the same network: 0.96x, FID 31.5; real states 20.9). The predictor step
# carries the deterministic part of the reverse SDE, which is what it is for (Song et al. 2021).
# Why 5 corrector steps and the end at 0.01 (until 2026-12-01 the bars used PC_ONE_STEP: 1 corrector step, end
# 1e-3): the sampler study (SAMPLER_STUDY, results/embedded/score-sampler-study/) held the layer-1 network, seed,
# n = 400 and the decode fixed and varied only the sampler; the decoded FID fell from 18.36 (1 step) to 13.73
# (3 steps) and 12.39 (5 steps). More corrector steps target the same distribution, only better mixed, so the
# 1-step figure measured the sampler's lag, not the prior. The end time 0.01 is where SGILO queries the score
# (below it the network was never asked to be right for SGILO's use); the Tweedie step still follows.
PC_ONE_STEP = dict(method="pc", n_steps=500, predictor="reverse_diffusion", corrector="langevin", snr=0.16)
SAMPLERS = {"pc": {**PC_ONE_STEP, "corrector_steps": 5, "eps": 0.01},
            "ald": dict(method="ald", n_levels=100, steps_each=5, snr=0.16)}
BAR_SAMPLER = "pc"


def norm_label(sp) -> str:
    """How a score prior's states were normalised, as the card names it."""
    if sp.metadata.get("norm_method") == "per_channel_standard":
        return "per channel standard"
    return "per channel" if isinstance(sp.norm_min, list) else "one pair"


def langevin_states(sp, n: int, gen: torch.Generator, batch: int = 250,
                    sampler: str | dict = BAR_SAMPLER) -> torch.Tensor:
    """``n`` samples of ``sp``'s layer with one of :data:`SAMPLERS` (or a sampler configuration of the same form)."""
    from bench.priors.samplers import sample_layer

    cfg = SAMPLERS[sampler] if isinstance(sampler, str) else sampler
    return torch.cat([sample_layer(sp, min(batch, n - i), generator=gen, **cfg) for i in range(0, n, batch)])


def langevin_images(sp, g, n: int, seed: int, batch: int = 250, keep: list | None = None,
                    sampler: str | dict = BAR_SAMPLER, rgb: str = "dropped") -> torch.Tensor:
    """Samples of the layer decoded by the generator (in chunks of ``batch``); the states themselves
    are appended to ``keep`` when given (to decode them a second way without sampling again)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        h = langevin_states(sp, min(batch, n - i), gen, sampler=sampler)
        if keep is not None:
            keep.append(h)
        out.append(decode_states(g, h, sp.layer, gen, rgb=rgb))
    return torch.cat(out)


@torch.no_grad()
def gaussian_states(train: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws from the full-covariance Gaussian fitted to the training states: the control a layer score
    prior must beat (it matches the data's first two moments and nothing more)."""
    x = train.flatten(1).double()
    mean, cov = x.mean(0), torch.cov(x.T)
    chol = torch.linalg.cholesky(cov + 1e-6 * cov.diagonal().mean() * torch.eye(len(cov), dtype=torch.double))
    z = torch.randn(n, len(mean), generator=gen, dtype=torch.double)
    return (mean + z @ chol.T).float().view(n, *train.shape[1:])


def gaussian_eps(yt: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, m: float, s: float) -> torch.Tensor:
    """The best noise prediction for Gaussian data N(mean, cov) diffused to y_t = m y + s z: E[z | y_t] =
    s (m^2 cov + s^2 I)^-1 (y_t - m mean) (flattened dims). On other data it is the best LINEAR predictor given
    the first two moments: the baseline a network's noise-prediction error should beat."""
    flat = yt.flatten(1).double() - m * mean
    a = m * m * cov + s * s * torch.eye(len(cov), dtype=torch.double)
    return (s * torch.linalg.solve(a, flat.T).T).float().view(yt.shape)


@torch.no_grad()
def eps_errors(sp, states: torch.Tensor, times=EPS_TIMES, seed: int = 10, train: torch.Tensor | None = None) -> dict:
    """Noise-prediction MSE at fixed t on ``states`` (original space) and the network's time sensitivity; with
    ``train`` (the training states), also the error of the Gaussian predictor fitted to them on the same inputs."""
    from bench.priors.sde import batch_broadcast

    y = sp.normalize(states)
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed))
    moments = None
    if train is not None:
        ty = sp.normalize(train).flatten(1).double()
        moments = (ty.mean(0), torch.cov(ty.T))
    out, gauss, first = {}, {}, None
    for t in times:
        tv = torch.full((len(y),), t)
        m, s = sp.sde.mean_coeff(tv), sp.sde.marginal_std(tv)
        yt = batch_broadcast(m, y) * y + batch_broadcast(s, y) * z
        out[f"t={t}"] = round(float((sp.eps(yt, tv) - z).pow(2).mean()), 4)
        if moments is not None:
            gauss[f"t={t}"] = round(float((gaussian_eps(yt, *moments, float(m[0]), float(s[0])) - z).pow(2).mean()), 4)
        first = yt if first is None else first
    e0, e1 = sp.eps(first, torch.full((len(y),), times[0])), sp.eps(first, torch.full((len(y),), 1.0))
    return {"eps_mse": out, "trivial_eps_mse": 1.0, **({"gaussian_eps_mse": gauss} if gauss else {}),
            "time_sensitivity": round(float((e1 - e0).abs().mean() / e0.abs().mean()), 4)}


def training_curve(log: Path, tail: float = 0.25) -> dict:
    """Held-out DSM per logged step from a training log, and the relative change over the last
    ``tail`` of the run (a plateau: small change); empty when the log has no eval entries."""
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    pts = [(r["step"], r["eval_dsm"]) for r in rows if "eval_dsm" in r and "step" in r]
    if len(pts) < 2:
        return {"points": pts}
    last = pts[-1][0]
    start = min(pts, key=lambda p: abs(p[0] - last * (1 - tail)))
    change = (pts[-1][1] - start[1]) / start[1] if start[1] else math.nan
    return {"points": pts, "tail_fraction": tail, "relative_change_over_tail": round(change, 4)}


TRAINING_RECORD = "training.json"


def training_record(folder: Path) -> dict:
    """The training curve of the model in ``folder``: measured from its ``log.jsonl`` when the log is there,
    else read from ``training.json``, a record of a curve measured earlier from a log that no longer exists (it
    names its source; the card shows it)."""
    log = folder / "log.jsonl"
    if log.exists():
        return training_curve(log)
    record = folder / TRAINING_RECORD
    return json.loads(record.read_text()) if record.exists() else {}


# The bars' decode keeps the state's own ToRGB term (decode_states rgb="own"). Until 2026-11-30 it dropped it,
# as the rounds do; then the real held-out states themselves failed two bars (layer 1: FID 5.03x the generator's,
# class shares 3.7-12.8%), while with their own RGB term they pass every bar (layer 1: FID 6.62 -> 1.63x, shares
# 7.0-12.3%; layer 0: 11.35, 5.75-14.25%), i.e. the dropped term, not the states, failed them.
BAR_DECODE_RGB = "own"


def evaluate_layer(prior_name: str, layer: int, score_file: Path, heldout: Path, out: Path, n: int = 1000,
                   seed: int = 0, rgb: str = BAR_DECODE_RGB, sdedit: bool = True) -> dict:
    """Every figure of this module for one trained layer prior; writes ``out/evaluation_layer<k>.json`` and
    the Figure-4 grid ``out/langevin_layer<k>.png``. ``sdedit=False`` leaves out the SDEdit diagnostic (not a
    bar, about 1.5 samplings; :func:`add_sdedit` adds it later)."""
    from bench.core.io import atomic_write_json
    from bench.priors.catalog import get_world, load_prior
    from bench.priors.score_prior import ScorePrior

    sp = ScorePrior.load(score_file)
    g = load_prior(prior_name).generator.cpu()
    real = torch.load(heldout, map_location="cpu", weights_only=True)
    train = heldout.with_name(heldout.name.replace("_heldout", ""))  # the store's training states beside it
    train_states = torch.load(train, map_location="cpu", weights_only=True) if train.exists() else None
    n = min(n, len(real))  # every compared image set has the same n (FID is biased upwards at small n)
    gen = torch.Generator().manual_seed(seed)
    states: list[torch.Tensor] = []
    samples = langevin_images(sp, g, n, seed, keep=states, rgb=rgb)
    others = {name: langevin_images(sp, g, n, seed, sampler=name, rgb=rgb) for name in SAMPLERS if name != BAR_SAMPLER}
    sampled = torch.cat(states)
    torch.save(sampled, out / f"samples_layer{layer}-{BAR_SAMPLER}.pt")  # to decode again without sampling
    real_decoded = decode_states(g, real[:n], layer, gen, rgb=rgb)
    save_grid(samples, out / f"langevin_layer{layer}.png")
    for name, imgs in others.items():
        save_grid(imgs, out / f"langevin_layer{layer}-{name}.png")
    save_grid(real_decoded, out / f"real_states_layer{layer}.png")
    res = {"prior": prior_name, "layer": layer, "score_file": str(score_file), "n_samples": n,
           "n_heldout_states": len(real), "architecture": sp.config.to_dict(),
           "sampler": {"name": BAR_SAMPLER, **SAMPLERS[BAR_SAMPLER]}, "decode_rgb": rgb,
           "normalisation": norm_label(sp),
           **eps_errors(sp, real, train=train_states), "training": training_record(score_file.parent)}
    quality = get_world(prior_name).quality_stats
    if quality is not None:
        res["langevin_decoded"] = quality(samples)
        res["real_states_decoded"] = quality(real_decoded)
        res["generator_samples"] = quality(generator_images(g, n, seed + 1))  # same n: FID is biased by n
        if train_states is not None:  # the control: a Gaussian with the training states' moments, decoded alike
            states_g = gaussian_states(train_states, n, gen)
            res["gaussian_decoded"] = quality(decode_states(g, states_g, layer, gen, rgb=rgb))
        # diagnostic, not a bar: the same states decoded with the average style for every later layer
        res["mean_style_decode"] = {
            "langevin_decoded": quality(decode_states(g, sampled, layer, gen, "mean", rgb=rgb)),
            "real_states_decoded": quality(decode_states(g, real[:n], layer, gen, "mean", rgb=rgb))}
        res["decode_seeds"] = decode_seed_block(g, real[:n], sampled, layer, quality, rgb=rgb)
        if sdedit:
            res["sdedit"] = sdedit_quality(sp, g, real[:n], layer, quality, rgb=rgb)
    res["bars"] = score_bars(res)
    if quality is not None:  # the other samplers' decoded samples, and the bars they would give
        res["other_samplers"] = {}
        for name, imgs in others.items():
            q = quality(imgs)
            res["other_samplers"][name] = {"sampler": SAMPLERS[name], "langevin_decoded": q,
                                           "bars": score_bars({**res, "langevin_decoded": q})}
    atomic_write_json(out / f"evaluation_layer{layer}.json", res, indent=1)
    return res


@torch.no_grad()
def generator_images(g, n: int, seed: int, batch: int = 500) -> torch.Tensor:
    """``n`` ordinary samples of the generator (mapping network, fresh noise) in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([g.synthesis(ordinary_styles(g, b, gen), g.make_noise(b, generator=gen)).skip.clamp(-1, 1)
                      for b in (min(batch, n - i) for i in range(0, n, batch))])


# The bars a layer score prior must meet to count as a prior of its layer (issue 14): decoded Langevin
# samples within 2x the FID of real states decoded the same way and 5x the generator's, every class
# between 5% and 15% of the samples, and a training curve that had flattened (held-out DSM changing by
# less than 2% over the last quarter of training).
FID_VS_REAL_STATES = 2.0
FID_VS_GENERATOR = 5.0
CLASS_SHARE_RANGE = (0.05, 0.15)
PLATEAU_TOLERANCE = 0.02


def score_bars(res: dict) -> list[dict]:
    """Each bar as {"bar", "measured", "limit", "passed"} (``passed`` None: not measurable in this world)."""
    bars = []
    lang, real, gen = (res.get(k) for k in ("langevin_decoded", "real_states_decoded", "generator_samples"))
    if lang and "fid_vs_test" in lang:
        for name, other, limit in (("FID / FID of real states decoded", real, FID_VS_REAL_STATES),
                                   ("FID / FID of generator samples", gen, FID_VS_GENERATOR)):
            ratio = lang["fid_vs_test"] / max(other["fid_vs_test"], 1e-12)
            bars.append({"bar": name, "measured": round(ratio, 2), "limit": f"<= {limit:g}", "passed": ratio <= limit})
    if lang and "class_shares" in lang:
        from bench.experiments.fairness.stats import wilson_ci

        lo, hi = min(lang["class_shares"].values()), max(lang["class_shares"].values())
        ok = CLASS_SHARE_RANGE[0] <= lo and hi <= CLASS_SHARE_RANGE[1]
        n = lang.get("n", res.get("n_samples", 0))
        # judged on the point estimates, as the bar is stated; the binomial 95% CIs (Wilson) say how far n
        # samples can resolve a share from the bar's edges
        cis = [[round(v, 3) for v in wilson_ci(round(share * n), n)] for share in (lo, hi)] if n else None
        bars.append({"bar": "class shares (min, max)", "measured": [lo, hi],
                     "limit": f"in [{CLASS_SHARE_RANGE[0]:g}, {CLASS_SHARE_RANGE[1]:g}]", "passed": ok,
                     **({"ci95": cis} if cis else {})})
    eps = res["eps_mse"].get("t=0.01")
    bars.append({"bar": "noise-prediction MSE at t = 0.01 (trivial predictor: 1.0)", "measured": eps,
                 "limit": "< 1.0 (reported)", "passed": eps is not None and eps < 1.0})
    change = res.get("training", {}).get("relative_change_over_tail")
    bars.append({"bar": "held-out DSM change over the last quarter of training", "measured": change,
                 "limit": f"|change| < {PLATEAU_TOLERANCE:g}",
                 "passed": None if change is None else abs(change) < PLATEAU_TOLERANCE})
    return bars


# Further decodes of the same states (fresh style and noise each): the bars' single decode is one draw of the
# decode's own randomness, and a class share near an edge of the bar can pass or fail on that draw alone.
DECODE_SEEDS = tuple(range(100, 108))


def meets_share_bar(shares: dict) -> bool:
    """Every class share within :data:`CLASS_SHARE_RANGE`."""
    return CLASS_SHARE_RANGE[0] <= min(shares.values()) and max(shares.values()) <= CLASS_SHARE_RANGE[1]


def summarise_decodes(rows: list[dict]) -> dict:
    """Per-decode class-share extremes and FIDs -> how many decodes meet the class-share bar, and the ranges."""
    return {"decodes": rows, "meets": sum(bool(r["meets"]) for r in rows), "of": len(rows),
            "min_share": [min(r["min_share"] for r in rows), max(r["min_share"] for r in rows)],
            "max_share": [min(r["max_share"] for r in rows), max(r["max_share"] for r in rows)],
            "fid_vs_test": [min(r["fid_vs_test"] for r in rows), max(r["fid_vs_test"] for r in rows)]}


@torch.no_grad()
def decode_seed_spread(g, states: torch.Tensor, layer: int, quality, seeds=DECODE_SEEDS,
                       rgb: str = BAR_DECODE_RGB) -> dict:
    """The same states decoded once per seed: in how many decodes do they meet the class-share bar?"""
    rows = []
    for seed in seeds:
        q = quality(decode_states(g, states, layer, torch.Generator().manual_seed(seed), rgb=rgb))
        shares = q["class_shares"]
        rows.append({"seed": seed, "fid_vs_test": q["fid_vs_test"], "min_share": min(shares.values()),
                     "max_share": max(shares.values()), "meets": meets_share_bar(shares), "shares": shares})
    return summarise_decodes(rows)


def total_variation(a: dict, b: dict) -> float:
    """Total-variation distance between two class-share tables (half the summed absolute differences)."""
    return 0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b))


def chance_total_variation(shares: dict, n: int, draws: int = 2000, seed: int = 0) -> float:
    """Mean total variation between the class shares of two independent sets of ``n`` draws from ``shares``:
    how far two sets of n images from one class distribution differ by chance alone."""
    p = torch.tensor(list(shares.values()), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    counts = [torch.nn.functional.one_hot(torch.multinomial(p / p.sum(), n * draws, replacement=True, generator=gen)
                                          .view(draws, n), len(p)).sum(1).double() / n for _ in range(2)]
    return float(0.5 * (counts[0] - counts[1]).abs().sum(1).mean())


def dispersion(sampled: torch.Tensor, real: torch.Tensor) -> float | None:
    """Total variance (trace of the covariance) of the samples over that of the real states: 1 for a prior with the
    data's spread, below 1 for one that is too concentrated. A diagnostic, not a bar: on the embedded world both
    installed priors are under-dispersed (layer 0: 0.86, layer 1: 0.77), yet layer 1 matches the real states'
    class distribution and layer 0 does not. None when the real states do not vary."""
    def total_variance(x: torch.Tensor) -> float:
        x = x.flatten(1).double()
        return float((x - x.mean(0)).pow(2).sum(1).mean())

    base = total_variance(real)
    return round(total_variance(sampled) / base, 4) if base > 0 else None


def decode_seed_block(g, real: torch.Tensor, sampled: torch.Tensor, layer: int, quality, seeds=DECODE_SEEDS,
                      rgb: str = BAR_DECODE_RGB) -> dict:
    """Real states and the bars' samples, each decoded once per seed, and the class-distribution distance
    between the two under the same decode seed: the class-share bar asks for 5-15% per class, which the
    decode alone can break (layer 0: the real states themselves fail it in most decodes); the distance asks
    instead whether the samples' classes match the data's, next to what chance alone gives at this n."""
    block = {"real_states": decode_seed_spread(g, real, layer, quality, seeds, rgb),
             "langevin": decode_seed_spread(g, sampled, layer, quality, seeds, rgb)}
    return {**block, **compare_with_real(block["real_states"], block["langevin"], real, sampled)}


def compare_with_real(real_spread: dict, sampled_spread: dict, real: torch.Tensor, sampled: torch.Tensor) -> dict:
    """``class_tv`` and ``dispersion`` of samples against the real states, from their decode-seed spreads (the
    same seeds); split out so that a caller comparing several sample sets decodes the real states only once."""
    n = min(len(real), len(sampled))
    pairs = zip(real_spread["decodes"], sampled_spread["decodes"])
    tv = [round(total_variation(r["shares"], s["shares"]), 4) for r, s in pairs]
    chance = [chance_total_variation(r["shares"], n) for r in real_spread["decodes"]]
    return {"class_tv": {"per_seed": tv, "mean": round(sum(tv) / len(tv), 4),
                         "chance_mean": round(sum(chance) / len(chance), 4), "n": n},
            "dispersion": dispersion(sampled[:n], real[:n])}


def _existing_evaluation(prior_name: str, layer: int, out: Path) -> tuple[Path, dict, object, object]:
    """(path, results, quality measure, generator) of an evaluation that a later measurement adds to."""
    from bench.priors.catalog import load_prior

    path = out / f"evaluation_layer{layer}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m bench.scores evaluate --layer {layer}` first")
    return path, json.loads(path.read_text()), quality_measure(prior_name), load_prior(prior_name).generator.cpu()


def quality_measure(prior_name: str):
    """The world's quality measure of decoded images (classifier FID, class shares); an error if it has none."""
    from bench.priors.catalog import get_world

    quality = get_world(prior_name).quality_stats
    if quality is None:
        raise ValueError(f"the world of {prior_name!r} has no quality measure: decoded states cannot be scored")
    return quality


def add_decode_seed_spread(prior_name: str, layer: int, out: Path, heldout: Path, seeds=DECODE_SEEDS) -> dict:
    """Adds ``decode_seeds`` (real states and the bars' samples, each decoded once per seed) to an existing
    ``evaluation_layer<k>.json``, from its saved samples: no sampling again."""
    from bench.core.io import atomic_write_json

    path, res, quality, g = _existing_evaluation(prior_name, layer, out)
    samples = out / f"samples_layer{layer}-{BAR_SAMPLER}.pt"
    if not samples.exists():
        raise FileNotFoundError(f"{samples} is missing: run `python -m bench.scores evaluate --layer {layer}` again")
    sampled = torch.load(samples, map_location="cpu", weights_only=True)
    real = torch.load(heldout, map_location="cpu", weights_only=True)[:len(sampled)]
    rgb = res.get("decode_rgb", BAR_DECODE_RGB)
    res["decode_seeds"] = decode_seed_block(g, real, sampled, layer, quality, seeds, rgb)
    atomic_write_json(path, res, indent=1)
    return res["decode_seeds"]


def add_sdedit(prior_name: str, layer: int, score_file: Path, heldout: Path) -> list[dict]:
    """Adds ``sdedit`` (:func:`sdedit_quality` on the held-out states) to an existing evaluation."""
    from bench.core.io import atomic_write_json
    from bench.priors.score_prior import ScorePrior

    path, res, quality, g = _existing_evaluation(prior_name, layer, score_file.parent)
    real = torch.load(heldout, map_location="cpu", weights_only=True)[:res.get("n_samples")]
    res["sdedit"] = sdedit_quality(ScorePrior.load(score_file), g, real, layer, quality,
                                   rgb=res.get("decode_rgb", BAR_DECODE_RGB))
    atomic_write_json(path, res, indent=1)
    return res["sdedit"]


# Where along t does a prior lose what the data has? Held-out real states are diffused to t0 and brought back
# with the bars' sampler (SDEdit, Meng et al. 2022), then decoded with one fixed decode seed, so the rows differ
# only in the states. With an exact score every row would match t0 = 0 (the real states decoded): the first t0
# whose row falls away locates the score's error. "Tweedie once" replaces the way back by the one-step posterior
# mean E[x_0 | x_t0] (no stochastic detail added back).
SDEDIT_STARTS = (0.01, 0.05, 0.1, 0.3, 1.0)
SDEDIT_DECODE_SEED = 1
# The way back is the 1-corrector-step PC sampler ending at 1e-3 (the bars' until 2026-12-01), not the bars' own:
# the starts reach down to 0.01, the bars' end time, and 5 corrector steps would make the diagnostic cost 1.5
# full samplings; the SDEdit rows stay comparable with the ones measured before the bars' sampler changed.
SDEDIT_SAMPLER = PC_ONE_STEP


@torch.no_grad()
def sdedit_states(sp, states: torch.Tensor, t_start: float, gen: torch.Generator, batch: int = 250) -> torch.Tensor:
    """``states`` diffused to ``t_start`` and sampled back by :data:`SDEDIT_SAMPLER` at its step density
    (``n_steps * t_start`` steps, at least 20); in original space."""
    from bench.priors.samplers import pc_sampler

    cfg = {k: v for k, v in SDEDIT_SAMPLER.items() if k != "method"}
    cfg["n_steps"] = max(20, round(cfg["n_steps"] * t_start))
    out = []
    for i in range(0, len(states), batch):
        chunk = states[i:i + batch]
        out.append(sp.denormalize(pc_sampler(sp.score_normalized, sp.sde, tuple(chunk.shape), x0=sp.normalize(chunk),
                                             t_start=t_start, generator=gen, **cfg)))
    return torch.cat(out)


@torch.no_grad()
def tweedie_once(sp, states: torch.Tensor, t_start: float, gen: torch.Generator) -> torch.Tensor:
    """``states`` diffused to ``t_start`` and replaced by the posterior mean E[x_0 | x_t] of the score model."""
    from bench.priors.samplers import diffuse, tweedie_denoise

    y = diffuse(sp.sde, sp.normalize(states), t_start, gen)
    return sp.denormalize(tweedie_denoise(sp.score_normalized, sp.sde, y, t_start))


def sdedit_quality(sp, g, states: torch.Tensor, layer: int, quality, starts=SDEDIT_STARTS, seed: int = 0,
                   rgb: str = BAR_DECODE_RGB) -> list[dict]:
    """One row per start time (and t0 = 0): FID and class-share extremes of the decoded states after SDEdit and
    after Tweedie once, every set decoded with the same decode seed."""
    def measure(h: torch.Tensor) -> dict:
        q = quality(decode_states(g, h, layer, torch.Generator().manual_seed(SDEDIT_DECODE_SEED), rgb=rgb))
        return {"fid_vs_test": q["fid_vs_test"], "min_share": min(q["class_shares"].values()),
                "max_share": max(q["class_shares"].values())}

    rows = [{"t_start": 0.0, "sdedit": measure(states)}]
    for t0 in starts:
        gen = torch.Generator().manual_seed(seed)
        rows.append({"t_start": t0, "sdedit": measure(sdedit_states(sp, states, t0, gen)),
                     "tweedie_once": measure(tweedie_once(sp, states, t0, torch.Generator().manual_seed(seed)))})
    return rows


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """An nrow x nrow PNG of the first images (in [-1, 1])."""
    from PIL import Image

    imgs = ((images[: nrow * nrow].clamp(-1, 1) + 1) * 127.5).round().byte().cpu()
    n, c, h, w = imgs.shape
    rows = math.ceil(n / nrow)
    canvas = torch.full((c, rows * (h + 2) + 2, nrow * (w + 2) + 2), 255, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[:, 2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + col * (w + 2): 2 + col * (w + 2) + w] = imgs[i]
    arr = canvas.permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr[..., 0] if c == 1 else arr).resize((arr.shape[1] * 2, arr.shape[0] * 2), Image.NEAREST).save(path)
    return path


# Is a decoded-sample FID the prior's, or its sampler's? The bars' PC sampler did one corrector step per time;
# with a score that is only approximately a gradient field that may not reach the model's own marginals. The
# study holds the network, seed, n and decode fixed and varies only the sampler: more corrector steps (the same
# target distribution, better mixed), where the sampler stops before its final Tweedie step, and the predictor
# alone. If the FID keeps falling with corrector steps, the bars' figure measured the sampler, not the prior.
SAMPLER_STUDY = {
    "pc, 1 corrector step, end 0.001": PC_ONE_STEP,
    "pc, end 0.01": {**PC_ONE_STEP, "eps": 0.01},
    "predictor only, end 0.01": {**PC_ONE_STEP, "corrector": "none", "eps": 0.01},
    "pc, 3 corrector steps, end 0.01": {**PC_ONE_STEP, "corrector_steps": 3, "eps": 0.01},
    "pc, 5 corrector steps, end 0.01": SAMPLERS["pc"],
    # added for layer 0's class balance: does more mixing at fewer times, the end at 0.001, or annealed Langevin
    # alone bring the class distribution to the real states'? (each row also records it, and the spread)
    "pc, 20 corrector steps at 150 times, end 0.01": {**PC_ONE_STEP, "n_steps": 150, "corrector_steps": 20,
                                                      "eps": 0.01},
    "pc, 5 corrector steps, end 0.001": {**PC_ONE_STEP, "corrector_steps": 5},
    "annealed Langevin, 100 levels x 5 steps, end 0.001": SAMPLERS["ald"],
}


def sampler_study(prior_name: str, layer: int, out: Path, names: list[str] | None = None, n: int = 400,
                  seed: int = 0, heldout: Path | None = None, rgb: str = BAR_DECODE_RGB,
                  score_file: Path | None = None) -> dict:
    """Decoded-sample quality of one layer prior under each sampler of :data:`SAMPLER_STUDY` (same network,
    seed 0, n and decode as the bars), and of the held-out real states decoded alike where given. Resumable:
    ``out/sampler_study_layer<k>.json`` gains one sampler at a time and a finished one is not run again."""
    import time

    from bench.core.io import atomic_write_json
    from bench.priors.catalog import load_prior
    from bench.priors.score_prior import ScorePrior

    unknown = sorted(set(names or ()) - set(SAMPLER_STUDY))
    if unknown:
        raise ValueError(f"unknown samplers {unknown}; valid: {list(SAMPLER_STUDY)}")
    quality = quality_measure(prior_name)
    prior = load_prior(prior_name)
    sp = ScorePrior.load(score_file) if score_file else prior.scores[layer]
    g = prior.generator.cpu()
    path = out / f"sampler_study_layer{layer}.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    if res and (res.get("n"), res.get("seed"), res.get("decode_rgb")) != (n, seed, rgb):
        raise ValueError(f"{path} was measured with n={res.get('n')}, seed={res.get('seed')}, "
                         f"decode {res.get('decode_rgb')}: move it away or use the same settings")
    res.update({"prior": prior_name, "layer": layer, "n": n, "seed": seed, "decode_rgb": rgb,
                "score_file": str(score_file) if score_file else f"installed score_layer{layer}.pt"})
    res.setdefault("samplers", {})
    out.mkdir(parents=True, exist_ok=True)
    real = torch.load(heldout, map_location="cpu", weights_only=True)[:n] if heldout is not None else None
    if real is not None and "real_states_decoded" not in res:
        res["real_states_decoded"] = quality(decode_states(g, real, layer, torch.Generator().manual_seed(seed),
                                                           rgb=rgb))
        atomic_write_json(path, res, indent=1)
    real_spread = None
    for name in names or list(SAMPLER_STUDY):
        if name in res["samplers"]:
            continue
        t = time.monotonic()
        states: list[torch.Tensor] = []
        q = quality(langevin_images(sp, g, n, seed, keep=states, sampler=SAMPLER_STUDY[name], rgb=rgb))
        res["samplers"][name] = {"config": SAMPLER_STUDY[name], "decoded": q,
                                 "minutes": round((time.monotonic() - t) / 60, 1)}
        if real is not None:  # the class distribution against the real states', decode seed by decode seed
            if real_spread is None:  # the same for every row: decoded once
                real_spread = decode_seed_spread(g, real, layer, quality, rgb=rgb)
            sampled = torch.cat(states)
            res["samplers"][name].update(compare_with_real(
                real_spread, decode_seed_spread(g, sampled, layer, quality, rgb=rgb), real, sampled))
        atomic_write_json(path, res, indent=1)
        print(f"sampler study, layer {layer}, {name}: FID {q['fid_vs_test']}", flush=True)
    return res


def sampler_study_markdown(res: dict) -> str:
    """The study as a table: per sampler its settings, FID (and its ratio to the real states decoded alike)
    and class-share extremes."""
    real = (res.get("real_states_decoded") or {}).get("fid_vs_test")
    lines = [f"# Sampler study: layer {res['layer']} prior of the `{res['prior']}` world", "",
             f"The same network ({res['score_file']}), seed {res['seed']}, n = {res['n']} and decode "
             f"(`{res['decode_rgb']}` RGB term) in every row; only the sampler differs "
             "(`bench.scores.evaluate.SAMPLER_STUDY`; `python -m bench.scores samplers`). The score card's bars "
             "use the row marked (the bars'). Rows not measured yet are missing (the study resumes).", "",
             "| sampler | corrector steps per time | end time (then Tweedie) | FID vs test | FID / real states decoded "
             "| class shares (min, max) | mean confidence | class distance to the real states (chance) "
             "| total variance / real states' | wall minutes |", "|---|---|---|---|---|---|---|---|---|---|"]
    if real is not None:
        shares = res["real_states_decoded"]["class_shares"].values()
        lines.append(f"| held-out real states (no sampler) | - | - | {real} | 1 | ({min(shares)}, {max(shares)}) | "
                     f"{res['real_states_decoded']['mean_confidence']} | - | 1 | - |")
    order = [k for k in SAMPLER_STUDY if k in res["samplers"]] + [k for k in res["samplers"] if k not in SAMPLER_STUDY]
    for name in order:
        r = res["samplers"][name]
        cfg, q = r["config"], r["decoded"]
        corr = (cfg["steps_each"] if cfg.get("method") == "ald" else
                0 if cfg.get("corrector") == "none" else cfg.get("corrector_steps", 1))
        ratio = f"{q['fid_vs_test'] / real:.2f}" if real else "-"
        shares = q["class_shares"].values()
        mark = " (the bars')" if cfg == SAMPLERS[BAR_SAMPLER] else ""
        tv = r.get("class_tv")
        tv_cell = f"{tv['mean']:.3f} ({tv['chance_mean']:.3f})" if tv else "not measured"
        lines.append(f"| {name}{mark} | {corr} | {cfg.get('eps', 1e-3):g} | {q['fid_vs_test']} | {ratio} | "
                     f"({min(shares)}, {max(shares)}) | {q['mean_confidence']} | {tv_cell} | "
                     f"{r.get('dispersion', '-')} | {r['minutes']} |")
    return "\n".join(lines) + "\n"
