"""Reconstruction grids: per task and level, the reference, what was measured (unobserved pixels grey,
compressed sensing as its back-projection, low resolution blown up) and each method's reconstruction
of the same test images, with each reconstruction's absolute error map below it.

The images come from the evaluation cells' previews (bench/harness/previews.py: the first images of
the first test batch); each method is shown with its tuned hyperparameters.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DISPLAY_NAMES = {"csgm": "CSGM", "ilo": "ILO", "ilo_unreg": "ILO-unreg.", "sgilo": "SGILO", "langevin": "Langevin"}


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def _picture(u8) -> np.ndarray:
    """uint8 [C, H, W] -> float [H, W] or [H, W, 3] in [0, 1] for imshow."""
    a = u8.numpy().astype(np.float32) / 255.0
    return a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))


def previews_by_level(sweep_dir: Path, records: list[dict]) -> dict[tuple[str, float], dict[str, dict]]:
    """{(task, level): {method: previews}} from the eval cells (tuned variant) whose batch starts at image 0."""
    from bench.harness.previews import load_previews

    out: dict[tuple[str, float], dict[str, dict]] = {}
    for rec in records:
        c = rec["cell"]
        if c["stage"] != "eval" or c["variant"] != "tuned" or rec["status"] != "ok" or c["image_indices"][0] != 0:
            continue
        blob = load_previews(sweep_dir, rec["key"])
        if blob is not None:
            out.setdefault((c["task"], float(c["level"])), {})[c["method"]] = blob
    return out


def render(task: str, level: float, by_method: dict[str, dict], path: Path, n_images: int = 3) -> Path:
    """One figure: per image a row of pictures and a row of error maps (shared colour scale)."""
    methods = [m for m in DISPLAY_NAMES if m in by_method] + sorted(set(by_method) - set(DISPLAY_NAMES))
    first = by_method[methods[0]]
    n = min(n_images, len(first["reference"]))
    cols = 2 + len(methods)
    fig, axes = plt.subplots(2 * n, cols, figsize=(1.6 * cols, 3.3 * n), squeeze=False)
    err_max = max(float(np.abs(_picture(b["reconstruction"][i]) - _picture(first["reference"][i])).max())
                  for b in by_method.values() for i in range(n)) or 1.0
    for i in range(n):
        ref = _picture(first["reference"][i])
        cmap = "gray" if ref.ndim == 2 else None
        panels = [("reference", ref), ("measurement", _picture(first["measurement"][i]) if "measurement" in first
                                       else None)]
        panels += [(display_name(m), _picture(by_method[m]["reconstruction"][i])) for m in methods]
        for j, (title, img) in enumerate(panels):
            ax, eax = axes[2 * i, j], axes[2 * i + 1, j]
            for a in (ax, eax):
                a.set_axis_off()
            if img is None:
                continue
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
            if j >= 2:
                err = np.abs(img - ref)
                mse = float((((img - ref) * 2) ** 2).mean())  # on the [-1, 1] scale, as the tables (8-bit rounded)
                eax.imshow(err if err.ndim == 2 else err.mean(-1), cmap="magma", vmin=0, vmax=err_max)
                title = f"{title}\nMSE {mse:.3g}"
            if i == 0 or j >= 2:
                ax.set_title(title, fontsize=7)
    fig.suptitle(f"{task} at level {level:g}: reconstructions (top) and |error| (bottom, shared scale)", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def write_grids(sweep_dir: Path, records: list[dict], out: Path) -> dict[str, Path]:
    """``recon_<task>_<level>.png`` for every (task, level) with previews."""
    paths = {}
    for (task, level), by_method in sorted(previews_by_level(sweep_dir, records).items()):
        name = f"recon_{task}_{level:g}"
        paths[name] = render(task, level, by_method, out / f"{name}.png")
    return paths
