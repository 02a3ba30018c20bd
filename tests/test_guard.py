"""The GemPy global-state guard: torch functions, grad mode and device survive GemPy."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("gempy_engine")

from gempy_gravinv.geomodel import gempy_torch, guarded, restore_torch  # noqa: E402


def _torch_works():
    x = torch.ones(2, 3)
    assert torch.zeros(2, 3).shape == (2, 3)
    assert torch.equal(torch.sum(x, dim=1), torch.tensor([3.0, 3.0]))
    assert torch.max(torch.tensor([1.0, 5.0])).item() == 5.0
    assert torch.transpose(x, 0, 1).shape == (3, 2)
    assert not hasattr(torch, "to_numpy")


def test_unguarded_gempy_breaks_torch_and_restore_repairs_it():
    # why the guard exists: GemPy's PyTorch switch patches the torch module globally
    from gempy_engine.config import AvailableBackends
    from gempy_engine.core.backend_tensor import BackendTensor

    grad0 = torch.is_grad_enabled()
    try:
        BackendTensor.change_backend_gempy(engine_backend=AvailableBackends.PYTORCH, dtype="float64",
                                           grads=False)
        assert not torch.is_grad_enabled()  # GemPy's process-wide no_grad
        with pytest.raises(TypeError):
            torch.sum(torch.ones(2, 3), dim=1)
        assert hasattr(torch, "to_numpy")
    finally:
        fixed = restore_torch()
        torch.set_grad_enabled(grad0)
        BackendTensor.change_backend_gempy(engine_backend=AvailableBackends.numpy)
        restore_torch()
        torch.set_default_device(None)
    assert "sum" in fixed and "to_numpy" in fixed
    _torch_works()


@pytest.mark.parametrize("grad_before", [True, False])
@pytest.mark.parametrize("grads", [True, False])
def test_guard_restores_torch_and_grad_mode(grad_before, grads):
    from gempy_engine.config import AvailableBackends
    from gempy_engine.core.backend_tensor import BackendTensor

    backend_before = BackendTensor.engine_backend
    with torch.set_grad_enabled(grad_before):
        with gempy_torch(grads=grads) as bt:
            assert bt.engine_backend == AvailableBackends.PYTORCH
            assert torch.is_grad_enabled() == grads
            # inside, GemPy's numpy-flavoured functions are active
            assert torch.sum(torch.ones((2, 3)), axis=1).shape == (2,)
            assert hasattr(torch, "to_numpy")
        assert torch.is_grad_enabled() == grad_before
        _torch_works()
    assert BackendTensor.engine_backend == backend_before
    assert getattr(torch._GLOBAL_DEVICE_CONTEXT, "device_context", None) is None


def test_guard_restores_on_error_and_nests():
    with pytest.raises(RuntimeError, match="boom"):
        with gempy_torch():
            with gempy_torch():  # nested: switched once, restored once
                pass
            assert hasattr(torch, "to_numpy")  # still inside the outer block
            raise RuntimeError("boom")
    _torch_works()

    @guarded(grads=False)
    def f():
        return torch.is_grad_enabled()

    assert f() is False
    assert torch.is_grad_enabled()
    _torch_works()


def test_guard_after_full_gempy_model_evaluation():
    # a real GemPy evaluation (tiny) through the guarded path, then Pyro's ESS code
    import numpy as np

    from gempy_gravinv.cases.bayes import synthetic_contact
    from gempy_gravinv.geomodel import TorchGeoModel

    case = synthetic_contact(n_cells=(2, 2, 2), n_stations=(2, 2))
    tg = TorchGeoModel(case["geo_model"], np.array([[500.0, 500.0, -100.0]]))
    with torch.no_grad():
        ids = tg.soft_ids()
    assert ids.shape == (1,)
    assert torch.is_grad_enabled()
    _torch_works()
    from pyro.ops.stats import effective_sample_size

    ess = effective_sample_size(torch.randn(2, 200, dtype=torch.float64), chain_dim=0, sample_dim=1)
    assert 100 < float(ess) < 800
