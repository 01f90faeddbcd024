"""(Re)train the embedded Fashion-MNIST world from the Debian data, stage by stage.

    python -m bench.embedded train                  # every stage, in order (hours on 2 CPU cores)
    python -m bench.embedded train --stage gan      # one stage: gan, export, classifier, invert, score
    python -m bench.embedded status                 # what is trained and committed

Each stage checkpoints frequently and resumes when re-run; intermediate files live under
``--work`` (default runs/embedded), final weights go to bench/embedded/weights/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

STAGES = ("gan", "export", "classifier", "invert", "score")
SCORE_LAYERS = (1, 2)  # states after layers 1 (128x8x8) and 2 (128x16x16): what SGILO's rounds 2 and 3 optimise


def stage_gan(work: Path, minutes: float, threads: int) -> None:
    from bench.embedded.train_gan import GanConfig, train

    train(GanConfig(out=str(work / "gan"), minutes=minutes, threads=threads))


def stage_export(work: Path) -> None:
    from bench.embedded.export import export_generator

    print(f"wrote {export_generator(work / 'gan' / 'checkpoint.pt')}")


def stage_classifier(work: Path, threads: int) -> None:
    from bench.embedded import classifier

    classifier.main(["train", "--out", str(work / "classifier")])


def stage_invert(work: Path, n: int, threads: int) -> None:
    from bench.embedded.invert import invert_training_images
    from bench.priors.catalog import load_prior

    torch.set_num_threads(threads)
    invert_training_images(load_prior("embedded"), work / "inversions", n=n)


def stage_score(work: Path, threads: int, layers: tuple[int, ...] = SCORE_LAYERS) -> None:
    from bench import train_score

    for k in layers:
        data = work / "inversions" / f"layer{k}.pt"
        args = ["--layer", str(k), "--out", str(work / f"score_layer{k}"), "--threads", str(threads)]
        args += ["--source", "ilo", "--data", str(data)] if data.exists() else ["--source", "syn"]
        train_score.main(args)


def status() -> int:
    from bench.assets import EMBEDDED_DIR

    for f in sorted(EMBEDDED_DIR.glob("*")):
        print(f"{f.name:28s} {f.stat().st_size / 1e6:7.2f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.embedded", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["train", "status"])
    p.add_argument("--stage", choices=STAGES + ("all",), default="all")
    p.add_argument("--work", default="runs/embedded", help="folder for checkpoints and intermediate data")
    p.add_argument("--gan-minutes", type=float, default=180.0, help="wall budget of one GAN invocation")
    p.add_argument("--inversions", type=int, default=2000, help="training images to invert with ILO")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if a.command == "status":
        return status()
    work = Path(a.work)
    stages = STAGES if a.stage == "all" else (a.stage,)
    for s in stages:
        print(f"== stage {s}", file=sys.stderr)
        if s == "gan":
            stage_gan(work, a.gan_minutes, a.threads)
        elif s == "export":
            stage_export(work)
        elif s == "classifier":
            stage_classifier(work, a.threads)
        elif s == "invert":
            stage_invert(work, a.inversions, a.threads)
        elif s == "score":
            stage_score(work, a.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
