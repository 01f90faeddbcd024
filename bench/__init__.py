"""SGILO benchmark harness: generative-prior inverse problems, tuned and evaluated fairly.

Importing it has no side effects; entry points call :func:`bench.core.runtime.init_process`.
Layers (docs/ARCHITECTURE.md): core -> priors, data -> harness -> report -> experiments.
"""
__version__ = "0.1.0"
