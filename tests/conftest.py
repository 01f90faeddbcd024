"""Shared fixtures. The test process is set up as every entry point sets up its process."""
from __future__ import annotations

import pytest
import torch

from bench.core.runtime import init_process

init_process()


@pytest.fixture
def one_thread():
    """Run a test with one intra-op thread: tiny models are dominated by threading overhead,
    and on a shared 2-core machine extra threads only add contention."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
