"""Tuning grids from the command line or a TOML file, replacing a method's built-in grid.

    --grid sgilo.temperature=[0,0,0.3],[0,0,1] --grid sgilo.noise_temp=0.01,0.03
    --grid-file grids.toml        # [sgilo]  temperature = [[0,0,0.3],[0,0,1]]  noise_temp = [0.01, 0.03]

Values are JSON (numbers, lists for per-round settings), separated by commas outside brackets.
A method's grid is the product of its given values, each point on top of the first point of the
method's built-in grid in this world (so the world's step schedule is kept unless ``steps`` is given).
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Sequence

from bench.harness.cli import UsageError


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def parse_grid_specs(specs: Sequence[str]) -> dict[str, dict[str, list]]:
    """``method.param=v1,v2`` strings -> {method: {param: [values]}}; UsageError on anything malformed."""
    out: dict[str, dict[str, list]] = {}
    for spec in specs:
        if "=" not in spec or "." not in spec.split("=", 1)[0]:
            raise UsageError(f"malformed --grid {spec!r}: expected METHOD.PARAM=V1,V2 (e.g. ilo.lr=[0.05],[0.1])")
        key, values = spec.split("=", 1)
        method, param = key.strip().split(".", 1)
        try:
            parsed = [json.loads(v) for v in split_top_level(values)]
        except json.JSONDecodeError as err:
            raise UsageError(f"--grid {spec!r}: values must be JSON numbers or lists ({err})") from None
        if not parsed:
            raise UsageError(f"--grid {spec!r} lists no value")
        out.setdefault(method, {})[param] = parsed
    return out


def read_grid_file(path: str | Path) -> dict[str, dict[str, list]]:
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"--grid-file {path}: {err}") from None
    bad = [m for m, v in data.items() if not isinstance(v, dict) or not all(isinstance(x, list) for x in v.values())]
    if bad:
        raise UsageError(f"--grid-file {path}: each method is a table of lists, e.g. [ilo] lr = [[0.05], [0.1]] "
                         f"(wrong: {', '.join(bad)})")
    return data


def expand_grids(given: dict[str, dict[str, list]], methods: Sequence[str], grid_key: str,
                 world_grids: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """{method: grid points} for the methods in ``given``; every point is checked against the method's
    hyperparameters (an unknown name or a wrong value fails here, not in every cell)."""
    import methods as method_registry

    out = {}
    for method, params in given.items():
        if method not in methods:
            raise UsageError(f"--grid names method {method!r}, which is not in --methods ({', '.join(methods)})")
        m = method_registry.get(method)
        base = world_grids[method][0] if method in world_grids else m.grid(grid_key)[0].to_dict()
        names = list(params)
        points = [{**base, **dict(zip(names, combo))} for combo in itertools.product(*(params[n] for n in names))]
        for p in points:
            try:
                m.params_from_dict(p)
            except (TypeError, ValueError) as err:
                raise UsageError(f"--grid {method}: {err}") from None
        out[method] = points
    return out
