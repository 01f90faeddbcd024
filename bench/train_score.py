"""Entry point ``python -m bench.train_score``; the code lives in bench/scores/train.py
(``python -m bench.scores train`` runs it as a stage of the score pipeline)."""
from bench.scores.train import main

if __name__ == "__main__":
    raise SystemExit(main())
