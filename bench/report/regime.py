"""The regime a world puts ILO and SGILO in: latent size k, each optimised state's size p, pixel
count n, and measurements per state dimension m/p at every default level (ILO/SGILO presuppose
k < p << n; with m/p far below 1 the most constrained method wins for structural reasons).

    python -m bench.report.regime --prior embedded          # markdown table
    python -m bench.report.regime --prior ffhq --generator-config '{"size": 1024, ...}'
The generator's architecture is read from its constructor config (no weights are needed, so the
FFHQ figures come from the config alone).
"""
from __future__ import annotations

import argparse
import json
import math
from typing import Sequence

import torch


def optimised_layers(cfg) -> list[int]:
    """Layers whose output state some round of the sweep's plan optimises (rounds r >= 1 start at
    layer r and optimise the state after layer r - 1), over the tuning grids and the ILO paper variant."""
    from bench.harness.sweep.plan import ilo_paper_params, plan_tune

    steps = [c.params.get("steps") for c in plan_tune(cfg)] + [ilo_paper_params(cfg)["steps"]]
    rounds = max(len(s) if isinstance(s, (list, tuple)) else 1 for s in steps if s is not None)
    return list(range(rounds - 1))


def regime_rows(prior: str, generator_config: dict, tasks: Sequence[str] = ("inpaint", "cs")) -> list[dict]:
    """One row per (task, default level): n, m and m/p per optimised layer; plus k in every row."""
    import tasks as task_registry
    from bench.harness.sweep.config import resolve
    from bench.priors.stylegan2 import Generator

    with torch.device("meta"):
        g = Generator(**generator_config)
    cfg = resolve(tuple(tasks), prior)
    layers = optimised_layers(cfg)
    shape = (g.img_channels, g.size, g.size)
    n = math.prod(shape)
    p = {k: math.prod(g.layer_shape(k)) for k in layers}
    rows = []
    for task in tasks:
        for level in cfg.levels[task]:
            m = task_registry.get(task).build(level, shape, seed=0).num_measurements
            rows.append({"task": task, "level": level, "n": n, "m": m, "k_z": g.style_dim,
                         "k_wplus": g.n_latent * g.style_dim, **{f"p_layer{k}": p[k] for k in layers},
                         **{f"m_over_p_layer{k}": round(m / p[k], 4) for k in layers}})
    return rows


def regime_markdown(prior: str, rows: list[dict]) -> str:
    layers = sorted(int(k.removeprefix("p_layer")) for k in rows[0] if k.startswith("p_layer"))
    r0 = rows[0]
    head = (f"**{prior}**: n = {r0['n']} pixel values, latent k = {r0['k_z']} (z; W+ {r0['k_wplus']}), optimised "
            f"states " + ", ".join(f"after layer {k}: p = {r0[f'p_layer{k}']} (p/n = {r0[f'p_layer{k}'] / r0['n']:.3g})"
                                   for k in layers))
    lines = [head, "", "| task | level | m | " + " | ".join(f"m/p (layer {k})" for k in layers) + " |",
             "|---|---|---|" + "---|" * len(layers)]
    for r in rows:
        lines.append(f"| {r['task']} | {r['level']:g} | {r['m']} | "
                     + " | ".join(f"{r[f'm_over_p_layer{k}']:.3g}" for k in layers) + " |")
    return "\n".join(lines)


def _generator_config(prior: str, given: str | None) -> dict:
    if given:
        return {k: ({int(a): b for a, b in v.items()} if k == "channels" else v) for k, v in json.loads(given).items()}
    from bench.priors.catalog import load_prior
    from bench.priors.stylegan2 import generator_config

    return generator_config(load_prior(prior).generator)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report.regime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prior", default="embedded")
    p.add_argument("--tasks", default="inpaint,cs")
    p.add_argument("--generator-config", default=None, help="JSON constructor config instead of loading the prior")
    a = p.parse_args(argv)
    rows = regime_rows(a.prior, _generator_config(a.prior, a.generator_config), a.tasks.split(","))
    print(regime_markdown(a.prior, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
