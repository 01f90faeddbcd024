"""Numerical check of SGILO's Theorem 3.1 (``python -m bench.theory``), one job per module:

- :mod:`.config`: :class:`~.config.Setting` (one architecture) and :class:`~.config.Config` (all sizes);
- :mod:`.dynamics`: random instances, the batched Langevin / GD / MALA chains, distances, exact and sliced W2, t_eps;
- :mod:`.stats`: instance-level bootstrap CIs of medians, means and log-log slopes;
- :mod:`.experiments`: the experiments (escape, landscape, t_eps);
- :mod:`.plots`, :mod:`.report`, :mod:`.verdict`, :mod:`.formatting`: figures, ``report.md`` and its verdicts;
- :mod:`.cli`: argument parsing, :func:`~.cli.run` and :func:`~.cli.main`.
"""
