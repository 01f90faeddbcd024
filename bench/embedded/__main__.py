"""(Re)train the embedded Fashion-MNIST world from the Debian data, stage by stage.

    python -m bench.embedded train                  # every stage, in order (hours on 2 CPU cores)
    python -m bench.embedded train --stage gan      # one stage: gan, export, classifier
    python -m bench.embedded status                 # what is trained and committed

Each stage checkpoints frequently and resumes when re-run; intermediate files live under
``--work`` (default runs/embedded-v2), final weights go to bench/embedded/weights/. The layer score
priors are trained by the world-agnostic pipeline: ``python -m bench.scores invert|train|evaluate|install
--prior embedded`` (README, "Layer score priors for any world").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

STAGES = ("gan", "export", "classifier")


def stage_gan(work: Path, minutes: float, threads: int, device: str) -> None:
    from bench.embedded.train_gan import GanConfig, train

    train(GanConfig(out=str(work / "gan"), minutes=minutes, threads=threads, device=device or ""))


def stage_export(work: Path) -> None:
    from bench.embedded.export import export_generator

    print(f"wrote {export_generator(work / 'gan' / 'checkpoint.pt')}")


def stage_classifier(work: Path, threads: int) -> None:
    from bench.embedded import classifier

    classifier.main(["train", "--out", str(work / "classifier")])


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
