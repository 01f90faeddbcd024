"""Numerical check of SGILO's Theorem 3.1 (``python -m bench.theory``), one job per module:

- :mod:`.config`: :class:`~.config.Setting` (one architecture) and :class:`~.config.Config` (all sizes);
- :mod:`.dynamics`: random instances, the batched Langevin / GD chains, distances, sliced W2 (the maths);
- :mod:`.stats`: fits and summaries of the runs' numbers;
- :mod:`.experiments`: the three experiments (escape, mixing, scaling);
- :mod:`.plots`, :mod:`.report`, :mod:`.verdict`, :mod:`.formatting`: figures, ``report.md`` and its verdicts;
- :mod:`.cli`: argument parsing, :func:`~.cli.run` and :func:`~.cli.main`.
"""
