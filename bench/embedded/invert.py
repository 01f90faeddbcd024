"""ILO inversions of real training images: the "ilo" training data of the score priors.

Each image is fully observed (the identity operator) and inverted with ILO's rounds; the
state after each round's layer is kept. The paper inverted all of FFHQ this way; here a few
thousand Fashion-MNIST *training* images (never test images) are enough for small priors.
Written incrementally to ``DIR/part_XXXX.pt`` so that a killed run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import methods
import tasks
from bench.core.device import get_device
from bench.data.fashion_mnist import load_tensor
from bench.priors.prior import Prior
from methods._core import Problem
from methods._rounds import RoundHook, run_rounds

DEFAULT_ROUNDS = (60, 60, 60)  # rounds starting at layers 0, 1, 2: states after layers 0, 1, 2


def invert_batch(prior: Prior, images: torch.Tensor, seeds: list[int], steps: tuple[int, ...] = DEFAULT_ROUNDS,
                 lr: float = 0.1) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    """ILO-unregularized inversion of fully observed images: ({layer: states}, per-image MSE)."""
    op = tasks.get("denoise").build(0.0, prior.image_shape, seed=0, device=prior.device)
    problem = Problem(op(images.to(prior.device)), op, seeds, reference=images.to(prior.device))
    params = methods.get("ilo_unreg").Params(steps=steps, lr=(lr,))
    res = run_rounds(problem, prior, params, RoundHook(), keep_states=True)
    layers = sorted(res[0].states)
    states = {k: torch.stack([r.states[k] for r in res]) for k in layers}
    mse = torch.stack([(r.reconstruction - images[i].cpu()).pow(2).mean() for i, r in enumerate(res)])
    return states, mse


def invert_training_images(prior: Prior, out: Path, n: int = 2000, batch: int = 16, seed: int = 0,
                           steps: tuple[int, ...] = DEFAULT_ROUNDS) -> dict[int, Path]:
    """Invert ``n`` training images (a seeded random subset), resumably; returns {layer: tensor file}."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    x, _ = load_tensor("train")
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    parts = range(0, n, batch)
    for p_i, start in enumerate(tqdm(parts, desc="ILO inversions", unit="batch")):
        part = out / f"part_{p_i:04d}.pt"
        if part.exists():
            continue
        ids = idx[start : start + batch]
        t0 = time.time()
        states, mse = invert_batch(prior, x[ids], [int(i) for i in ids], steps)
        tmp = part.with_suffix(".tmp")
        torch.save({"indices": ids, "states": states, "mse": mse, "seconds": time.time() - t0}, tmp)
        tmp.replace(part)
    merged: dict[int, list[torch.Tensor]] = {}
    for part in sorted(out.glob("part_*.pt")):
        blob = torch.load(part, weights_only=True)
        for k, v in blob["states"].items():
            merged.setdefault(int(k), []).append(v)
    files = {}
    for k, chunks in merged.items():
        files[k] = out / f"layer{k}.pt"
        torch.save(torch.cat(chunks)[:n].contiguous(), files[k])
    return files


def main(argv: list[str] | None = None) -> None:
    from bench.priors.catalog import load_prior

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/embedded/inversions")
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default=None, help="cpu, cuda, ...; default: $BENCH_DEVICE or auto")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    files = invert_training_images(load_prior("embedded", get_device(a.device)), Path(a.out), a.n, a.batch)
    for k, f in files.items():
        print(f"layer {k}: {f}")


if __name__ == "__main__":
    main()
