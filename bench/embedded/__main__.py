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
SCORE_LAYERS = (0, 1)  # states after layers 0 (16x4x4) and 1 (8x8x8): what SGILO's rounds 1 and 2 optimise,
# the analogue of the official layer1/layer2 score models (FFHQ 4x4 / 8x8 blocks' outputs)


def stage_gan(work: Path, minutes: float, threads: int, device: str) -> None:
    from bench.embedded.train_gan import GanConfig, train

    train(GanConfig(out=str(work / "gan"), minutes=minutes, threads=threads, device=device or ""))


def stage_export(work: Path) -> None:
    from bench.embedded.export import export_generator

    print(f"wrote {export_generator(work / 'gan' / 'checkpoint.pt')}")


def stage_classifier(work: Path, threads: int) -> None:
    from bench.embedded import classifier

    classifier.main(["train", "--out", str(work / "classifier")])


def stage_invert(work: Path, n: int, threads: int, device: str) -> None:
    from bench.core.device import get_device
    from bench.embedded.invert import invert_training_images
    from bench.priors.catalog import load_prior

    torch.set_num_threads(threads)
    invert_training_images(load_prior("embedded", get_device(device or None)), work / "inversions", n=n,
                           batch=16 if get_device(device or None).type == "cpu" else 250)


def stage_score(work: Path, threads: int, device: str, minutes: float,
                layers: tuple[int, ...] = SCORE_LAYERS) -> None:
    """Train each layer's score prior on the ILO inversions (run the invert stage first), then copy it
    into the committed weights folder as score_layer{k}.pt."""
    import shutil

    from bench.core.assets import EMBEDDED_DIR
    from bench.scores import train as train_score

    for k in layers:
        data = work / "inversions" / f"layer{k}.pt"
        if not data.exists():
            raise SystemExit(f"{data} is missing: run `python -m bench.embedded train --stage invert` first")
        out = work / f"score_layer{k}"
        args = ["--layer", str(k), "--out", str(out), "--threads", str(threads), "--source", "ilo",
                "--data", str(data), "--generator", str(EMBEDDED_DIR / "generator.pt"), "--minutes", str(minutes)]
        train_score.main(args + (["--device", device] if device else []))
        shutil.copyfile(out / "score_prior.pt", EMBEDDED_DIR / f"score_layer{k}.pt")


def status() -> int:
    from bench.core.assets import EMBEDDED_DIR

    for f in sorted(EMBEDDED_DIR.glob("*")):
        print(f"{f.name:28s} {f.stat().st_size / 1e6:7.2f} MB")
    return 0


def main(argv: list[str] | None = None) -> int:
    from bench.core.runtime import init_process

    init_process()
    p = argparse.ArgumentParser(prog="python -m bench.embedded", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["train", "status"])
    p.add_argument("--stage", choices=STAGES + ("all",), default="all")
    p.add_argument("--work", default="runs/embedded-v2", help="folder for checkpoints and intermediate data")
    p.add_argument("--gan-minutes", type=float, default=180.0, help="wall budget of one GAN invocation")
    p.add_argument("--inversions", type=int, default=2000, help="training images to invert with ILO")
    p.add_argument("--score-minutes", type=float, default=120.0, help="wall budget of one score-prior training")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="", help="cpu, cuda, ...; default: $BENCH_DEVICE or auto")
    a = p.parse_args(argv)
    if a.command == "status":
        return status()
    work = Path(a.work)
    stages = STAGES if a.stage == "all" else (a.stage,)
    for s in stages:
        print(f"== stage {s}", file=sys.stderr)
        if s == "gan":
            stage_gan(work, a.gan_minutes, a.threads, a.device)
        elif s == "export":
            stage_export(work)
        elif s == "classifier":
            stage_classifier(work, a.threads)
        elif s == "invert":
            stage_invert(work, a.inversions, a.threads, a.device)
        elif s == "score":
            stage_score(work, a.threads, a.device, a.score_minutes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
