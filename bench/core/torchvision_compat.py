"""Make ``torchvision`` importable next to a CPU-only torch build.

The torchvision wheels on PyPI are CUDA builds. Next to the CPU build of torch their C
extension cannot load, which torchvision tolerates, except that 0.28's
``_meta_registrations`` registers fake kernels for ``torchvision::nms``/``qnms`` without
checking, so ``import torchvision`` raises "operator torchvision::nms does not exist".
We only need torchvision's pure-Python parts (model definitions for the LPIPS backbone,
transforms for open_clip), never its custom ops. When that import fails for this reason we
declare the two op schemas (no kernels) and import again; calling them would still raise
torchvision's own "Couldn't load custom C++ ops" error.
"""
from __future__ import annotations

import sys

import torch

_FRAGMENT = None  # keeps the schema library alive for the process lifetime


def ensure_torchvision_importable() -> bool:
    """Import torchvision, patching around the missing-ops bug; False if absent."""
    global _FRAGMENT
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "models"):
        return True
    try:
        import torchvision  # noqa: F401

        return True
    except ModuleNotFoundError:
        return False
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _FRAGMENT = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        _FRAGMENT.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401,F811

    return True
