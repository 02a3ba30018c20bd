"""Shared fixtures and markers for the gempy_gravinv test suite."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (run `make test-gpu` on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _torch_state_is_restored():
    """Each test starts from the process state the previous one found.

    GemPy's PyTorch backend switches gradients off process-wide and replaces ``torch``
    attributes; tests that run it on purpose must not leak that into the next test.
    """
    grad = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(grad)
    from gempy_gravinv.geomodel._guard import restore_torch

    restore_torch()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny problems: intra-op threads only add synchronisation (and a shared CPU hurts)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def graded_benchmark():
    """``benchmarks/padded_fields.py``, whose ``build`` draws graded meshes (padding, octrees, topography) as users
    build them."""
    spec = importlib.util.spec_from_file_location(
        "padded_fields", Path(__file__).resolve().parents[1] / "benchmarks" / "padded_fields.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
