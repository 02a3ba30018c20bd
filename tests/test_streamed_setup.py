"""The closed-form setup without the dense design: its rows streamed from the operator in panels.

Where the float64 design does not fit in memory, the Gram matrix, the uniform response
and the adjoint product are formed from row panels of the sensitivity. The least-squares
starts, the regional's leave-one-out scores and the prior's check must be those of the
dense setup, up to the order of the sums.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, INRConfig
from gempy_gravinv.cases import synthetic
from gempy_gravinv.inversion import _streamed
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.inversion._warmstart import DESIGN_BYTES_PER_ENTRY, plan_setup

FAST = dict(progress=False, max_steps=150, warm_start_steps=100, dtype="float64")
CPU = torch.device("cpu")
GIB = 2**30


def test_the_plan_holds_streams_or_refuses_for_what_the_setup_needs():
    """Dense where the design fits; streamed where only its Gram matrix and a panel do; refused otherwise.

    1.8e8 entries (1225 stations x 147,000 cells, a 70 x 70 x 30 mesh) need about 5.4 GiB
    held at 32 bytes each: held where 20 GiB are free. With 2 GiB free the rows are
    streamed: the 1225² Gram and its companions take 80 MiB, a panel (8 bytes per entry)
    the rest of 3/4 of the memory less the operator's blocks: two panels.
    """
    n, N = 1225, 147_000
    plan = plan_setup(n, N, CPU, free=20 * GIB)
    assert not plan.streamed and plan.refusal is None and plan.dense_refusal is None
    need = n * N * DESIGN_BYTES_PER_ENTRY
    assert not plan_setup(n, N, CPU, free=int(need / 0.75) + 1).streamed
    edge = plan_setup(n, N, CPU, free=int(need / 0.75) - 1)
    assert edge.streamed and edge.panel_rows == n  # one panel: every row at 8 bytes, not 32
    plan = plan_setup(n, N, CPU, free=2 * GIB, reserve=2**28)
    assert plan.streamed and plan.refusal is None
    assert "1225 x 147000" in plan.dense_refusal and "5.4 GiB" in plan.dense_refusal and "2.0 GiB" in plan.dense_refusal
    expected = int((0.75 * 2 * GIB - 2**28 - n * n * _streamed.GRAM_BYTES_PER_ENTRY) // (8 * N))
    assert plan.panel_rows == min(n, expected) and plan.panel_rows < n
    # the n x n matrices do not fit: refused, saying both
    small = plan_setup(n, N, CPU, free=80 * 2**20)
    assert not small.streamed and "GiB free on cpu" in small.refusal and "Gram matrix" in small.refusal
    # a panel fits but too many are needed
    thin = plan_setup(n, N, CPU, free=int((n * n * _streamed.GRAM_BYTES_PER_ENTRY + 8 * N * 20) / 0.75))
    assert thin.refusal is not None and "panels" in thin.refusal
    # several ranks: no streaming
    assert "GiB free on cpu" in plan_setup(n, N, CPU, free=2 * GIB, streamable=False).refusal
    # a Gram product too costly is refused whatever the memory
    assert "multiply-adds" in plan_setup(20_000, 30_000, CPU, free=2**50).refusal


def _pair(case, regional, monkeypatch, free, **extra):
    """The same problem set up with its design dense, and streamed with ``free`` bytes."""
    import gempy_gravinv.inversion._problem as problem_module

    cfg = INRConfig.auto(bounds=case.bounds, regional=regional, **FAST, **extra)
    dense = Problem(case.survey, case.mesh, cfg)
    assert not dense.setup_plan.streamed
    op = GravityOperator(case.mesh, case.survey, device="cpu", store="matrix_free", memory_budget=300_000)
    monkeypatch.setattr(problem_module, "available_memory", lambda device: free)
    streamed = Problem(case.survey, case.mesh, cfg, operator=op)
    return dense, streamed


@pytest.mark.parametrize("regional", ["auto", "plane"])
def test_a_streamed_setup_gives_the_dense_setup_s_models(regional, monkeypatch, caplog):
    """Starts, leave-one-out scores and the prior's kurtosis agree with the dense setup's to round-off.

    The dipping block's 441 x 4851 design needs 68 MB held; with 25 MB free it is streamed
    in panels whose edges fall inside the operator's row blocks.
    """
    case = synthetic.dipping_block(noise_seed=0)
    with caplog.at_level(logging.INFO, logger="gempy_gravinv"):
        dense, streamed = _pair(case, regional, monkeypatch, free=25_000_000)
    plan = streamed.setup_plan
    assert plan.streamed and plan.refusal is None and streamed.design_refusal is None
    assert 1 < np.ceil(case.survey.n_data / plan.panel_rows) <= _streamed.MAX_PANELS
    assert any("streamed in panels" in r.getMessage() for r in caplog.records)
    for beta in (1.0, 2.0):
        a, b = dense.least_squares_start(beta), streamed.least_squares_start(beta)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * float(a.abs().max()))
    if regional == "auto":
        ra, rb = dense.regional_selection, streamed.regional_selection
        assert ra["kind"] == rb["kind"]
        for kind, v in ra["loo_chi2"].items():  # it reads the Gram's weakest kept directions: looser
            assert rb["loo_chi2"][kind] == pytest.approx(v, rel=1e-4)
    pa, pb = dense.prior_selection, streamed.prior_selection
    assert pa["prior"] == pb["prior"] == "compact"
    assert pb["excess_kurtosis"] == pytest.approx(pa["excess_kurtosis"], rel=1e-6)


def test_the_gram_panels_and_the_adjoint_are_the_dense_products():
    """Every panel count (one row each up to all rows) gives ``A Aᵀ``, ``G 1 / σ`` and ``Aᵀ v`` of the dense design."""
    case = synthetic.single_block(noise_seed=0)
    op = GravityOperator(case.mesh, case.survey, device="cpu", store="matrix_free", memory_budget=20_000)
    prob = Problem(case.survey, case.mesh, INRConfig(bounds=case.bounds, **FAST), operator=op)
    assert len(list(op.dense_rows())) > 2
    G = op.dense()
    g = torch.Generator().manual_seed(0)
    s = torch.rand(case.mesh.n_cells, generator=g, dtype=torch.float64) + 0.5
    std = prob.std
    A = G * s[None, :] / std[:, None]
    v = torch.randn(case.survey.n_data, generator=g, dtype=torch.float64)
    for source in (op, G):  # rows from the operator, or from a stored G
        prob.stream_rows = source  # set by hand: this small problem's own plan is dense
        for rows in (1, 5, 13, case.survey.n_data):
            K, a0 = _streamed.gram(prob, s, rows)
            torch.testing.assert_close(K, A @ A.T, rtol=1e-12, atol=1e-12 * float(K.abs().max()))
            torch.testing.assert_close(a0, G.sum(1) / std, rtol=1e-12, atol=0)
        torch.testing.assert_close(_streamed.adjoint(prob, s, v), A.T @ v, rtol=1e-12, atol=1e-12)


def test_the_run_reports_how_its_setup_held_the_design(monkeypatch):
    """``metrics.json`` says dense, streamed (with the panel rows) or refused, and why; nothing without a setup."""
    import gempy_gravinv.inversion._problem as problem_module
    from gempy_gravinv import invert_inr

    case = synthetic.single_block(noise_seed=0)
    quick = dict(FAST, max_steps=20, warm_start_steps=20)
    res = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick))
    assert res.metrics_report()["closed_form_setup"] == dict(design="dense", panel_rows=None, reason=None)
    assert "closed_form_setup" not in invert_inr(case.survey, case.mesh,
                                                 INRConfig(bounds=case.bounds, **quick)).metrics_report()
    op = GravityOperator(case.mesh, case.survey, device="cpu", store="matrix_free", memory_budget=20_000)
    monkeypatch.setattr(problem_module, "available_memory", lambda device: 500_000)
    res = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick), operator=op)
    setup = res.metrics_report()["closed_form_setup"]
    assert setup["design"] == "streamed" and 1 <= setup["panel_rows"] < case.survey.n_data
    assert "GiB free on cpu" in setup["reason"]
    monkeypatch.setattr(problem_module, "available_memory", lambda device: 2**16)
    setup = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick),
                       operator=op).metrics_report()["closed_form_setup"]
    assert setup["design"] == "refused" and "Gram matrix" in setup["reason"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_streamed_setup_on_cuda_gives_the_dense_cpu_setup_s_starts(monkeypatch):
    """The panels, the Gram and the adjoint on the GPU: the starts of the dense setup on the CPU."""
    import gempy_gravinv.inversion._problem as problem_module

    case = synthetic.dipping_block(noise_seed=0)
    cfg = INRConfig.auto(bounds=case.bounds, **FAST)
    dense = Problem(case.survey, case.mesh, dataclasses.replace(cfg, device="cpu"))
    op = GravityOperator(case.mesh, case.survey, device="cuda", store="matrix_free", memory_budget=300_000)
    monkeypatch.setattr(problem_module, "available_memory", lambda device: 25_000_000)
    streamed = Problem(case.survey, case.mesh, dataclasses.replace(cfg, device="cuda"), operator=op)
    assert streamed.setup_plan.streamed and streamed.device.type == "cuda"
    for beta in (1.0, 2.0):
        a, b = dense.least_squares_start(beta), streamed.least_squares_start(beta).cpu()
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * float(a.abs().max()))
