"""The fairness table as markdown (and its W&B run)."""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pandas as pd

from bench.experiments.fairness.baseline import BASELINE_METHOD as BASELINE
from bench.experiments.fairness.config import Choice, FairnessConfig


def _fmt_count(r: pd.Series) -> str:
    if r["n"] == 0:
        return f"- ({r['n_failed']} failed)" if r["n_failed"] else "-"
    s = f"{r['correct']:.4g}/{r['n']} ({100 * r['ci_low']:.0f}-{100 * r['ci_high']:.0f}%)"
    return s + (f", {r['n_failed']} failed" if r["n_failed"] else "")


def _fmt_gap(r: pd.Series) -> str:
    if "gap" not in r or r["gap"] is None or math.isnan(r["gap"]):
        return ""
    return f"{100 * r['gap']:+.1f} ({100 * r['gap_ci_low']:+.1f} to {100 * r['gap_ci_high']:+.1f})"


def table_markdown(table: pd.DataFrame, groups: Sequence[str], meta: dict[str, Any]) -> str:
    """The markdown report: one table per factor, methods x (single, majority) rows."""
    lines = []
    if meta.get("smoke"):
        lines += [f"> **SMOKE RUN, NOT A RESULT**: {meta['smoke']}", ""]
    lines += [f"# Fairness table ({meta.get('prior', '?')} prior)", "",
              f"Images per group: {meta.get('n_per_group', '?')}. Each is downsampled (bicubic) by the factor "
              f"per side (x factor^2 in pixel count), reconstructed by each method, and "
              f"classified by {meta.get('classifier', '?')}. Cells: correct/n images, averaged over the seeds "
              f"(95% CI: Wilson for one seed; with several, a bootstrap over images of their seed-averaged "
              f"correctness); 'by seed': each seed's accuracy. 'gap': accuracy of the first group minus the "
              f"second's, in points (95% bootstrap CI, images resampled within groups). "
              f"'{BASELINE}': a logistic regression on the measurement alone, no prior (fit on training images). "
              f"'majority of S': majority vote over S posterior samples (ties: the first sample's class); "
              f"'agreement': mean per-image fraction of samples agreeing with their majority (1 = no diversity). "
              f"'preserved': same class as the classifier gives the original image (the official SGILO criterion). "
              f"'original': the classifier on the undegraded images (its ceiling).", ""]
    for key in ("hyperparameters", "store", "seeds", "command"):
        if meta.get(key):
            lines.append(f"- {key}: {meta[key]}")
    lines.append("")
    side = meta.get("image_side")
    for factor, sub in table.groupby("factor", sort=True):
        res = f" ({side}x{side} -> {side // factor}x{side // factor})" if side and factor else ""
        title = "original images (no degradation)" if factor == 0 else f"x{factor} per side = x{factor ** 2} in pixel count{res}"
        lines += [f"## {title}", "",
                  "| method | vote | hyperparameters | " + " | ".join(groups)
                  + " | total | gap | by seed | preserved | agreement |",
                  "|---|---|---|" + "---|" * len(groups) + "---|---|---|---|---|"]
        for (method, vote), rows in sub.groupby(["method", "vote"], sort=False):
            by = {r["group"]: r for _, r in rows.iterrows()}
            tot = by["total"]
            agr = "" if math.isnan(tot["agreement_mean"]) or vote == "single" else f"{tot['agreement_mean']:.2f}"
            pres = f"{tot['preserved']:.4g}/{tot['n']}" if tot["n"] else "-"
            lines.append(f"| {method} | {vote} | {tot['params_source']} | " + " | ".join(_fmt_count(by[g]) for g in groups)
                         + f" | {_fmt_count(tot)} | {_fmt_gap(tot)} | {tot.get('accuracy_by_seed', '')} | {pres} | {agr} |")
        lines.append("")
    return "\n".join(lines)




def paired_section(paired: pd.DataFrame) -> str:
    """Method a vs method b on the same images: accuracy difference with its paired CI, McNemar per seed."""
    if paired.empty:
        return ""
    lines = ["", "## Paired comparisons (same images)", "",
             "diff = accuracy(a) - accuracy(b) in points over the same images (each image's correctness averaged over "
             "the seeds both ran), paired bootstrap 95% CI over images; McNemar: exact two-sided test per seed on the "
             "discordant images (a right and b wrong / a wrong and b right). A method is its single sample unless "
             "marked 'majority of S' (the vote over its S posterior samples: S times the compute of one run). The "
             "measurement-only baseline is deterministic and is paired with every seed of the other side.", "",
             "| factor | a | b | images | seeds | acc a | acc b | diff (95% CI) | McNemar per seed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in paired.iterrows():
        lines.append(f"| x{r['factor']} | {r['a']} | {r['b']} | {r['n']} | {r['seeds']} | {100 * r['acc_a']:.1f}% | "
                     f"{100 * r['acc_b']:.1f}% | {100 * r['diff']:+.1f} ({100 * r['ci_low']:+.1f} to "
                     f"{100 * r['ci_high']:+.1f}) | {r['mcnemar_by_seed']} |")
    return "\n".join(lines) + "\n"


def failures_section(per_image: pd.DataFrame) -> str:
    """Why images are counted as failed: each distinct reason with its factor, method and count."""
    if "reason" not in per_image.columns:
        return ""
    bad = per_image[per_image["status"] != "ok"]
    if bad.empty:
        return ""
    lines = ["", "## Failed images", "", "| factor | method | images | reason |", "|---|---|---|---|"]
    for (factor, method, reason), sub in bad.groupby(["factor", "method", "reason"], sort=True, dropna=False):
        lines.append(f"| x{factor} | {method} | {len(sub)} | {str(reason)[:300]} |")
    return "\n".join(lines) + "\n"


def params_section(choices: dict[tuple[int, str], Choice]) -> str:
    lines = ["", "## Hyperparameters", ""]
    for (f, m), ch in choices.items():
        lines.append(f"- x{f} per side, {m} ({ch.source}): `{json.dumps(ch.params, sort_keys=True)}`")
    return "\n".join(lines) + "\n"


def log_table_wandb(cfg: FairnessConfig, table: pd.DataFrame, mode: str, markdown: str) -> None:
    """One W&B run per fairness store holding the table (offline works without network)."""
    if mode == "disabled":
        return
    from bench.harness.wandb_log import finish_run, init_run

    wandb, run = init_run(mode, cfg.out / "wandb", "fairness-table", cfg.name, job_type="fairness",
                          name=f"fairness/{cfg.prior}",
                          config={"prior": cfg.prior, "methods": list(cfg.methods), "factors": list(cfg.factors),
                                  "samples": cfg.samples, "classifier": cfg.classifier, "limit": cfg.limit})
    try:
        run.log({"fairness": wandb.Table(dataframe=table), "fairness_md": wandb.Html(f"<pre>{markdown}</pre>")})
        tot = table[table["group"] == "total"]
        run.summary.update({f"acc/x{r['factor']}/{r['method']}/{r['vote']}": r["accuracy"] for _, r in tot.iterrows()})
    finally:
        finish_run(wandb, run)
