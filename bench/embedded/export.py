"""Turn a GAN training checkpoint into the committed generator asset (EMA weights + Gaussian fit)."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from bench.core.assets import EMBEDDED_DIR
from bench.embedded.assets import GENERATOR_FILE, save_generator
from bench.embedded.train_gan import ema_generator
from bench.priors.mapping_proxy import fit_gaussian


def export_generator(checkpoint: str | Path, out: str | Path = EMBEDDED_DIR / GENERATOR_FILE,
                     n_fit: int = 100_000, history: str = "") -> Path:
    """The EMA generator and its mapping proxy fit, with the training facts for the model card; ``history`` says
    where a run trained when it moved between devices (the checkpoint knows only the last one)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    g = ema_generator(state).requires_grad_(False)
    fit = fit_gaussian(g, n=n_fit, seed=0)
    meta = {"iterations": int(state["iter"]), "kimg": round(state["iter"] * state.get("batch", 32) / 1000, 1),
            "train_minutes": round(state["seconds"] / 60, 1), "device": state.get("device", "cpu"),
            "source": str(checkpoint), **({"history": history} if history else {})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_generator(g, fit, out, meta)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint", help="train_gan checkpoint.pt")
    p.add_argument("--out", default=str(EMBEDDED_DIR / GENERATOR_FILE))
    p.add_argument("--history", default="", help="where the run trained, for the model card (e.g. '400 kimg on "
                   "2 CPU cores, then 164 on an H200')")
    a = p.parse_args(argv)
    path = export_generator(a.checkpoint, a.out, history=a.history)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
