"""The fairness table (the SGILO paper's posterior-sampling ablation); ``python -m bench.fairness``.
config -> plan (cells) -> run (execute, classify) -> stats -> report; cli.py parses the command line."""
