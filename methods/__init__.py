"""Method plugins (one file each), found by name: ``methods.get("ilo")``."""
from bench.core.registry import Registry, import_submodules

REGISTRY: Registry = Registry("method")
register = REGISTRY.register


def get(name: str):
    return REGISTRY.get(name)


def names() -> list[str]:
    return REGISTRY.names()


import_submodules(__name__)
