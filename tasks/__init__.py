"""Task (forward-operator) plugins, one file each, found by name: ``tasks.get("inpaint")``."""
from bench.core.registry import Registry, import_submodules

REGISTRY: Registry = Registry("task")
register = REGISTRY.register


def get(name: str):
    return REGISTRY.get(name)


def names() -> list[str]:
    return REGISTRY.names()


import_submodules(__name__)
