"""The model card of a world's layer score priors, written from the pipeline's measured files only.

    python -m bench.scores card --prior embedded --results results/embedded

Reads, under the pipeline's folder: ``inversions.json`` (the training data), and every trained model
folder ``score_layer<k>[-<variant>]/`` that has an ``evaluation_layer<k>.json`` (run ``evaluate`` first).
Run folders are not committed, so the card also carries each model's measured files (evaluation, training log,
options, a summary of its weights) into ``--results``/score-models/ and reads models from there that the
pipeline's folder no longer has (their grids are the copies in ``--results``): a fresh checkout regenerates the
same card.
Writes ``scores.md`` (with the bars of :func:`bench.scores.evaluate.score_bars`, pass or fail, and which
model is installed), the held-out training curves ``score_training_curves.png`` and copies of each
model's Figure-4 grid, into ``--results``; the card is also copied next to the installed weights.
"""
from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path

from bench.scores.evaluate import score_bars
from bench.scores.invert import INVERTERS

CARRIED = "score-models"
CARRIED_FILES = ("evaluation_layer*.json", "config.json", "log.jsonl", "training.json")  # grids: the card's copies


def evaluated_models(store: Path, carried: Path | None = None) -> list[tuple[Path, dict]]:
    """(model folder, its evaluation) for every evaluated model, by layer then variant name; a model the
    pipeline's folder lacks is taken from the ``carried`` copies."""
    found = {}
    for root in ([carried] if carried else []) + [store]:  # the pipeline's own folder wins
        for folder in sorted(root.glob("score_layer*")):
            evals = sorted(folder.glob("evaluation_layer*.json"))
            if folder.is_dir() and evals:
                found[folder.name] = (folder, json.loads(evals[0].read_text()))
    return sorted(found.values(), key=lambda fe: (fe[1]["layer"], fe[0].name))


def carry_models(models: list[tuple[Path, dict]], dest: Path) -> None:
    """Copy each model's measured files, and ``model.json`` (its weights' metadata, parameter count and hash),
    to ``dest/<folder name>/`` (the weights themselves stay out of git)."""
    for folder, _ in models:
        target = dest / folder.name
        if folder.resolve() == target.resolve():
            continue
        target.mkdir(parents=True, exist_ok=True)
        for pattern in CARRIED_FILES:
            for src in folder.glob(pattern):
                shutil.copyfile(src, target / src.name)
        summary = {**model_summary(folder), "metadata": _metadata(folder)}
        (target / "model.json").write_text(json.dumps(summary, indent=1) + "\n")


def installed_model(folder: Path, score_dir: Path | None, layer: int) -> bool:
    """Whether ``folder``'s weights are the ones installed for ``layer`` (same bytes)."""
    if score_dir is None:
        return False
    dest, own = score_dir / f"score_layer{layer}.pt", model_summary(folder)["sha256"]
    return dest.exists() and own is not None and hashlib.sha256(dest.read_bytes()).hexdigest() == own


def label(folder: Path, ev: dict) -> str:
    arch = ev["architecture"]
    skip = ", Gaussian skip" if arch.get("gaussian_skip") else ""
    cfg = folder / "config.json"  # the training options: the DSM weighting, when it is not the default
    weighting = json.loads(cfg.read_text()).get("weighting", "likelihood_is") if cfg.exists() else "likelihood_is"
    skip += {"none": ", uniform-t weighting", "likelihood": ", likelihood weighting"}.get(weighting, "")
    cond = arch.get("time_conditioning", "official")
    return f"layer {ev['layer']} `{folder.name}` ({cond} time conditioning{skip}, {ev['normalisation']} normalisation)"


def _fmt(v) -> str:
    if isinstance(v, list):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def sampler_name(ev: dict) -> str:
    """The sampler of an evaluation's bars (evaluations written before samplers were recorded used ALD)."""
    return ev.get("sampler", {}).get("name", "ald")


def sampler_label(ev: dict) -> str:
    """The bars' sampler of an evaluation, with the settings that changed over time (PC's corrector steps and
    end time), so rows measured with different samplers are not confused."""
    cfg = ev.get("sampler", {})
    if sampler_name(ev) != "pc":
        return sampler_name(ev).upper()
    steps = cfg.get("corrector_steps", 1)
    return f"PC ({steps} corrector step{'s' if steps != 1 else ''}, end {cfg.get('eps', 1e-3):g})"


def describe_sampler(ev: dict) -> str:
    """One evaluation's bars' sampler in words, from its recorded configuration."""
    cfg = ev.get("sampler", {})
    if sampler_name(ev) == "pc":
        steps = cfg.get("corrector_steps", 1)
        return (f"{sampler_label(ev)}: score_sde's predictor-corrector sampler, a reverse-diffusion predictor and "
                f"{steps} annealed-Langevin corrector step{'s' if steps != 1 else ''} (snr {cfg.get('snr', 0.16):g}) "
                f"at each of {cfg.get('n_steps', 500)} times from T to {cfg.get('eps', 1e-3):g}, then Tweedie "
                "denoising")
    return ("ALD: annealed Langevin alone (the corrector without the predictor, as the paper's Figure 4 names "
            f"it), {cfg.get('n_levels', 100)} levels x {cfg.get('steps_each', 5)} steps, snr {cfg.get('snr', 0.16):g}")


def bars_table(models: list[tuple[Path, dict]], installed: dict[str, bool]) -> list[str]:
    """One row per model with the bars' sampler, then one per other sampler measured (for comparison only)."""
    rows = []
    for folder, ev in models:
        rows.append((f"{label(folder, ev)}, {sampler_label(ev)} samples", installed[folder.name],
                     score_bars(ev)))  # from the measured statistics, with the current bar rules
        for name, other in ev.get("other_samplers", {}).items():
            rows.append((f"{label(folder, ev)}, {name.upper()} samples (comparison, not the bars' sampler)",
                         installed[folder.name], score_bars({**ev, "langevin_decoded": other["langevin_decoded"]})))
    lines = ["| model | installed | " + " | ".join(b["bar"] for b in rows[0][2]) + " |",
             "|---|---|" + "---|" * len(rows[0][2])]
    for name, inst, model_bars in rows:
        cells = [f"{_fmt(b['measured'])} ({b['limit']}: {'pass' if b['passed'] else 'n/a' if b['passed'] is None else 'FAIL'})"
                 + (f"; 95% CIs {_fmt(b['ci95'])}" if b.get("ci95") else "") for b in model_bars]
        lines.append(f"| {name} | {'yes' if inst else 'no'} | " + " | ".join(cells) + " |")
    return lines


def decode_line(models: list[tuple[Path, dict]]) -> str:
    """How the evaluations decoded states (evaluations before the field existed dropped the RGB sum)."""
    kinds = sorted({ev.get("decode_rgb", "dropped") for _, ev in models})
    text = {"dropped": "the RGB skip sum restarted after the state's layer, as the rounds do",
            "own": "the RGB skip sum started from the state's own ToRGB term"}
    return "; ".join(text[k] for k in kinds)


def sampler_lines(models: list[tuple[Path, dict]]) -> str:
    """What the bars' sampler is, from the evaluations (bench/scores/evaluate.py SAMPLERS says why)."""
    from bench.scores.evaluate import SAMPLERS

    texts = list(dict.fromkeys(describe_sampler(ev) for _, ev in models))
    names = {sampler_name(ev) for _, ev in models}
    out = "Bars' sampler: " + "; ".join(texts) + "."
    if len(texts) > 1:
        out += (" Rows name their sampler: the bars' sampler changed on 2026-12-01 (`bench/scores/evaluate.py` "
                "SAMPLERS says why), and a model evaluated before it keeps its earlier figures until re-evaluated.")
    if any("other_samplers" in ev for _, ev in models) and "pc" in names:
        out += (" ALD alone is measured beside it on the same networks. On the VP SDE each noise level's marginal is "
                "the data shrunk by mean_coeff(t) plus noise, so corrector-only ALD must carry every sample outward by "
                "Langevin diffusion between levels; with a few steps per level it lags and its samples are "
                "over-dispersed, which the predictor step (the deterministic part of the reverse SDE) removes "
                f"({len(SAMPLERS)} samplers in `bench/scores/evaluate.py`).")
    return out


def training_table(models: list[tuple[Path, dict]]) -> list[str]:
    times = list(models[0][1]["eps_mse"])
    lines = ["| model | parameters | steps | wall (min) | device | final held-out DSM | " +
             " | ".join(f"eps MSE {t}" for t in times) + " | t-sensitivity |", "|---" * (7 + len(times)) + "|"]
    for folder, ev in models:
        meta = _metadata(folder)
        final = meta.get("final_eval_dsm")  # the weights' own record, where the curve's points are gone
        pts = ev.get("training", {}).get("points") or [[None, None if final is None else round(final, 5)]]
        lines.append(f"| `{folder.name}` | {model_summary(folder)['parameters']:,} | {meta.get('steps')} | "
                     f"{meta.get('seconds', 0) / 60:.1f} | {meta.get('device', '?')} | {_fmt(pts[-1][1])} | "
                     + " | ".join(_eps_cell(ev, t) for t in times) + f" | {ev['time_sensitivity']} |")
    records = [f"- `{folder.name}`: {ev['training']['source']}" for folder, ev in models
               if ev.get("training", {}).get("source")]
    if records:
        lines += ["", "Training curves taken from a record, not from a log (bench.scores.evaluate.training_record): "
                  "their plateau figure is the one measured from the log, which is gone; the curve is missing from "
                  "`score_training_curves.png`:", "", *records]
    return lines


def _eps_cell(ev: dict, t: str) -> str:
    """The network's noise-prediction MSE, with the Gaussian predictor's on the same inputs where measured."""
    gauss = ev.get("gaussian_eps_mse", {}).get(t)
    return _fmt(ev["eps_mse"][t]) + ("" if gauss is None else f" (Gaussian {_fmt(gauss)})")


def quality_table(models: list[tuple[Path, dict]]) -> list[str]:
    if "langevin_decoded" not in models[0][1]:
        return []
    lines = ["| image set (decoded by the generator) | n | FID vs test | classes >= 1% | max class share | mean confidence |",
             "|---|---|---|---|---|---|"]

    def row(name: str, d: dict) -> str:
        return (f"| {name} | {d['n']} | {d['fid_vs_test']} | {d['classes_present_ge_1pct']} | {d['max_class_share']} | "
                f"{d['mean_confidence']} |")

    seen_layers = set()
    for folder, ev in models:
        lines.append(row(f"{sampler_label(ev)} samples, `{folder.name}`", ev["langevin_decoded"]))
        for name, other in ev.get("other_samplers", {}).items():
            lines.append(row(f"{name.upper()} samples, `{folder.name}` (comparison)", other["langevin_decoded"]))
        if ev["layer"] not in seen_layers:
            seen_layers.add(ev["layer"])
            lines.append(row(f"held-out real layer-{ev['layer']} states, decoded the same way", ev["real_states_decoded"]))
            if "gaussian_decoded" in ev:
                lines.append(row(f"control: Gaussian fit (mean, full covariance) to the layer-{ev['layer']} training "
                                 "states, decoded the same way", ev["gaussian_decoded"]))
    lines.append(row("ordinary generator samples", models[0][1]["generator_samples"]))
    shares = [f"- `{f.name}` ({sampler_label(ev)}): " + ", ".join(f"{k} {v:.3f}" for k, v in ev["langevin_decoded"]["class_shares"].items())
              for f, ev in models]
    return (lines + ["", "Predicted-class shares of the decoded samples (the bars' sampler):", "", *shares] +
            reference_share_lines(models) + decode_seed_lines(models) + sdedit_lines(models) +
            mean_style_lines(models))


def reference_share_lines(models: list[tuple[Path, dict]]) -> list[str]:
    """Does the data itself pass the class-share and generator-FID bars under the bars' decode? Held-out real
    states decoded the same way are the reference: when they fail too, the bar measures the decode as well."""
    from bench.scores.evaluate import CLASS_SHARE_RANGE, FID_VS_GENERATOR

    lo_bar, hi_bar = CLASS_SHARE_RANGE
    out, seen = [], set()
    for _, ev in models:
        if ev["layer"] in seen or "real_states_decoded" not in ev:
            continue
        seen.add(ev["layer"])
        v = list(ev["real_states_decoded"]["class_shares"].values())
        ok = lo_bar <= min(v) and max(v) <= hi_bar
        line = (f"- layer {ev['layer']}: held-out real states decoded the same way have class shares "
                f"{min(v):.3f}-{max(v):.3f}, so the data itself {'meets' if ok else 'does NOT meet'} the "
                f"{lo_bar:g}-{hi_bar:g} bar in the bars' decode")
        if "decode_seeds" in ev:
            spread = ev["decode_seeds"]["real_states"]
            line += "; " + spread_phrase(spread)
            if spread["meets"] * 2 <= spread["of"]:
                line += ": under this decode the data itself fails the bar more often than it meets it"
        out.append(line)
    fid_seen = set()
    for _, ev in models:  # the generator-FID bar applied to the real states themselves
        if ev["layer"] in seen and "generator_samples" in ev and ev["layer"] not in fid_seen:
            fid_seen.add(ev["layer"])
            ratio = ev["real_states_decoded"]["fid_vs_test"] / max(ev["generator_samples"]["fid_vs_test"], 1e-12)
            out.append(f"- layer {ev['layer']}: held-out real states decoded the same way have FID {ratio:.2f}x the "
                       f"generator samples', so the data itself {'meets' if ratio <= FID_VS_GENERATOR else 'does NOT meet'}"
                       f" the <= {FID_VS_GENERATOR:g}x bar under this decode")
    return ["", "The class-share and generator-FID bars checked on the data:", "", *out] if out else []


def spread_phrase(spread: dict) -> str:
    """How a set of states fares over the further decodes (bench.scores.evaluate.decode_seed_spread)."""
    return (f"decoded again with {spread['of']} other decode seeds they meet it in {spread['meets']} of "
            f"{spread['of']} (smallest share {spread['min_share'][0]:.3f}-{spread['min_share'][1]:.3f}, largest "
            f"{spread['max_share'][0]:.3f}-{spread['max_share'][1]:.3f})")


def tv_phrase(block: dict) -> str:
    """The samples' class distribution against the real states' under the same decode seeds
    (bench.scores.evaluate.decode_seed_block), next to what chance alone gives at that n."""
    tv = block.get("class_tv")
    if not tv:
        return ""
    return (f"; class distribution vs the real states decoded with the same seed: total variation {tv['mean']:.3f} "
            f"on average ({min(tv['per_seed']):.3f}-{max(tv['per_seed']):.3f}), where two sets of {tv['n']} from one "
            f"distribution differ by {tv['chance_mean']:.3f} by chance"
            + (f"; total variance of the samples / of the real states: {block['dispersion']:.2f}"
               if block.get("dispersion") is not None else ""))


def decode_seed_lines(models: list[tuple[Path, dict]]) -> list[str]:
    """The bars' samples decoded once per further decode seed: does a class-share verdict survive the decode's
    own randomness? Printed beside the same count for the real states (reference_share_lines)."""
    rows = [f"- `{f.name}` ({sampler_label(ev)} samples): {spread_phrase(ev['decode_seeds']['langevin'])}"
            + tv_phrase(ev["decode_seeds"]) for f, ev in models if "decode_seeds" in ev]
    return (["", "The class-share bar over further decodes of the same states (fresh style and noise per decode; "
             "the data's count is in the list above):", "", *rows] if rows else [])


def sdedit_lines(models: list[tuple[Path, dict]]) -> list[str]:
    """Where along t each prior loses quality (bench.scores.evaluate.sdedit_quality): held-out real states
    diffused to t0 and sampled back, decoded with one fixed decode seed; t0 = 0 is the states themselves."""
    from bench.scores.evaluate import SDEDIT_DECODE_SEED

    def cell(m: dict | None) -> str:
        return "-" if m is None else f"{m['fid_vs_test']:.2f} ({m['min_share']:.3f}-{m['max_share']:.3f})"

    rows = [f"| `{f.name}` | {r['t_start']:g} | {cell(r['sdedit'])} | {cell(r.get('tweedie_once'))} |"
            for f, ev in models if "sdedit" in ev for r in ev["sdedit"]]
    if not rows:
        return []
    return ["", "Where along t the prior loses quality: held-out real states diffused to t0 and sampled back with "
            "PC with 1 corrector step (SDEdit; the sampler's step density, at least 20 steps; "
            "`bench.scores.evaluate.SDEDIT_SAMPLER` says why not the bars'), or replaced by the model's posterior "
            f"mean E[x_0 | x_t0] (Tweedie once), all decoded with decode seed {SDEDIT_DECODE_SEED}. With an exact "
            "score every SDEdit row would equal t0 = 0 (tests/test_score_bars.py checks this on Gaussian data).",
            "", "| model | t0 | SDEdit: FID (class shares min-max) | Tweedie once: FID (class shares) |",
            "|---|---|---|---|", *rows]


def mean_style_lines(models: list[tuple[Path, dict]]) -> list[str]:
    """The diagnostic decode (the average style for every later layer): the class-share range of the samples
    next to that of real states decoded the same way, so a reader sees whether the decode or the state skews."""
    rows = [(f, ev["mean_style_decode"]) for f, ev in models if "mean_style_decode" in ev]
    if not rows:
        return []

    def span(d: dict) -> str:
        v = list(d["class_shares"].values())
        return f"{min(v):.3f}-{max(v):.3f}"

    return ["", "Diagnostic (not a bar): the same states decoded with the average style for every later layer "
            "instead of a fresh one, class-share range (min-max over the 10 classes) and FID:", "",
            "| model | Langevin samples | real states | FID samples / real states |", "|---|---|---|---|",
            *[f"| `{f.name}` | {span(d['langevin_decoded'])} | {span(d['real_states_decoded'])} | "
              f"{d['langevin_decoded']['fid_vs_test']} / {d['real_states_decoded']['fid_vs_test']} |" for f, d in rows]]


def model_summary(folder: Path) -> dict:
    """{"metadata", "parameters", "sha256"} of the model in ``folder``, from its weights or, for a carried model
    whose weights are not there, from its ``model.json`` (the same fields, written by :func:`carry_models`)."""
    weights = folder / "score_prior.pt"
    if weights.exists():
        stat = weights.stat()
        return _weights_summary(weights, stat.st_mtime_ns, stat.st_size)
    summary = folder / "model.json"
    return json.loads(summary.read_text()) if summary.exists() else {"metadata": {}, "parameters": 0, "sha256": None}


@functools.lru_cache(maxsize=64)
def _weights_summary(weights: Path, mtime_ns: int, size: int) -> dict:
    """One load per weights file and version (the card asks for metadata, size and hash in several places)."""
    from bench.priors.score_prior import ScorePrior

    sp = ScorePrior.load(weights)
    return {"metadata": dict(sp.metadata), "parameters": sum(p.numel() for p in sp.model.parameters()),
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def _metadata(folder: Path) -> dict:
    """The weights' metadata, with the training device from the options file where the weights lack it."""
    meta = dict(model_summary(folder)["metadata"])
    cfg = folder / "config.json"
    if cfg.exists():
        meta.setdefault("device", json.loads(cfg.read_text()).get("device") or "cpu")
    return meta


def curves_figure(models: list[tuple[Path, dict]], path: Path) -> Path:
    """Held-out DSM against training step, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for folder, ev in models:
        pts = ev.get("training", {}).get("points") or []
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=folder.name, marker=".", ms=3)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out DSM (EMA weights, uniform t)")
    ax.set_title("Score-prior training curves (held-out states)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def data_lines(store: Path, carried: Path) -> list[str]:
    """The training data (the inversion run's summary; its carried copy when the run folder is gone)."""
    inv_file = store / "inversions.json"
    if inv_file.exists():
        carried.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(inv_file, carried / inv_file.name)
    else:
        inv_file = carried / inv_file.name
    if not inv_file.exists():
        return []
    inv = json.loads(inv_file.read_text())
    method = inv.get("inverter", "ilo_unreg")  # stores written before the inverter was recorded used ilo_unreg
    radius = inv.get("radius_state")
    radius_note = f" (radius {'/'.join(map(str, radius))} per element)" if method == "ilo" and radius else ""
    given_radius = inv.get("params", {}).get("radius_state")  # recorded only when --radius was passed
    options = (f" --method {method}" if method != "ilo_unreg" else "") + (
        f" --radius {given_radius[0]}" if given_radius else "") + (f" --seed {inv['seed']}" if inv.get("seed") else "")
    return [f"- Data: {inv['images']} {INVERTERS.get(method, method)} inversions{radius_note} "
            f"of the world's **training** images (a seeded random "
            f"subset, never evaluation images), every pixel observed, steps per round {inv['steps']}; each layer's "
            "training states are the variable its round optimised (the state after layer k is optimised by round k+1). "
            f"Per-image inversion MSE: mean {_fmt(inv['mse_mean'])}, median {_fmt(inv['mse_median'])}. "
            "The last tenth of the inversions is held out: the training curves and every statistic below use it.",
            f"- Command: `python -m bench.scores invert --prior {inv['prior']} -n {inv['images']} --steps "
            f"{','.join(map(str, inv['steps']))}{options}`"]


def write_card(prior: str, store: Path, results: Path) -> Path:
    """Write ``results/scores.md`` (and, when it lists an installed model, copy it beside the installed weights);
    returns its path."""
    from bench.priors.catalog import get_spec

    spec = get_spec(prior)
    score_dir = spec.score_dir() if spec.score_dir else None
    models = evaluated_models(store, results / CARRIED)
    if not models:
        raise FileNotFoundError(f"no evaluated score models under {store}: run `python -m bench.scores evaluate "
                                f"--prior {prior} --layer K` first")
    results.mkdir(parents=True, exist_ok=True)
    carry_models(models, results / CARRIED)
    installed = {f.name: installed_model(f, score_dir, ev["layer"]) for f, ev in models}
    grids = []
    for folder, ev in models:
        k = ev["layer"]
        extra = [(folder / f"langevin_layer{k}-{o}.png", f"{folder.name}_langevin-{o}.png") for o in ev.get("other_samplers", {})]
        for src, name in [(folder / f"langevin_layer{k}.png", f"{folder.name}_langevin.png"), *extra,
                          (folder / f"real_states_layer{k}.png", f"score_real_states_layer{k}.png")]:
            if name in grids:
                continue
            if src.exists():
                shutil.copyfile(src, results / name)
            if (results / name).exists():  # a carried model's grid is the copy an earlier card made
                grids.append(name)
    curves_figure(models, results / "score_training_curves.png")
    n = models[0][1]["n_samples"]
    lines = [f"# Layer score priors of the `{prior}` world", "",
             "Score models of the generator's intermediate states: the state after layer k is what SGILO's round "
             "k+1 optimises (the analogue of the official `layer1`/`layer2` FFHQ score models). Trained, measured and "
             f"installed by `python -m bench.scores invert|train|evaluate|install|card --prior {prior}`; "
             f"`load_prior({prior!r}).scores[k]` loads the installed `score_layer<k>.pt`.", "",
             *data_lines(store, results / CARRIED),
             "- Training: denoising score matching on the VP-SDE (beta 0.1 -> 20) with likelihood weighting by importance "
             "sampling of t (a model labelled `uniform-t weighting` instead: t uniform, plain eps-MSE), Adam lr 2e-4 with warm-up, batch 64, EMA 0.999 (EMA weights saved); held-out DSM "
             "(uniform t, fixed noise) every 500 steps: `score_training_curves.png`.",
             "- Architectures: `official` is SGILO's score ViT as published (t enters as one scalar offset per token; "
             "LayerNorm removes most of it); `adaln` is ours: the same ViT with adaptive LayerNorm on a Fourier "
             "embedding of t (bench/priors/score_vit.py); `Gaussian skip` (ours) adds to the network's output the "
             "exact noise prediction of a Gaussian fitted to the training states (mean, full covariance), so the "
             "network learns only the rest. Normalisation: `per channel` maps each channel's 0.1%/99.9% "
             "quantiles to [0, 1]; `per channel standard` centres each channel with std 0.5; `one pair` is the "
             "official single min/max pair.", "",
             "## Bars", "",
             f"Measured by `python -m bench.scores evaluate` on {n} samples of each layer prior decoded by the rest "
             f"of the generator with a fresh style and noise ({decode_line(models)}), against the held-out real "
             "states decoded the same way and ordinary generator samples, all of the same n. " + sampler_lines(models),
             "",
             *bars_table(models, installed), "",
             "## Training and noise prediction", "",
             "eps MSE: E|eps(y_t, t) - z|^2 on held-out states (the trivial predictor 0 scores 1.0; in brackets, the best "
             "predictor for Gaussian data with the training states' mean and covariance, on the same inputs: a "
             "network that does not beat it models no more than two moments); t-sensitivity: "
             "mean |eps(y, 1) - eps(y, 0.01)| / mean |eps(y, 0.01)| on the same inputs (an exact model changes by O(1)).", "",
             *training_table(models), "",
             *(["## Decoded samples", "", *quality_table(models), ""] if quality_table(models) else []),
             "## Figures", "",
             "Figure-4 grids (first 64 decoded samples; `-ald`: the ALD sampler) and the held-out real states decoded "
             "the same way: "
             + ", ".join(f"`{g}`" for g in grids) + "; training curves: `score_training_curves.png`."]
    card = results / "scores.md"
    card.write_text("\n".join(lines) + "\n")
    # only a card that describes an installed model belongs beside the installed weights: the card of a candidate
    # pipeline (another --out, nothing installed from it) must not replace the installed models' card
    if score_dir is not None and score_dir.resolve() != results.resolve() and any(installed.values()):
        shutil.copyfile(card, score_dir / "scores.md")
    return card
