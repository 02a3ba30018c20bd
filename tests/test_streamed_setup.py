"""The closed-form setup's design read from the sensitivity's rows: in memory, or streamed in panels.

The Gram matrix, the uniform response and the adjoint product are formed from row
panels of the sensitivity. Whichever way the rows are read, the least-squares starts,
the regional's leave-one-out scores and the prior's check must agree up to the order of
the sums, and the starts must satisfy the normal equations of the model they stand for.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, INRConfig
from gempy_gravinv.cases import synthetic
from gempy_gravinv.inversion import _streamed
from gempy_gravinv.inversion._problem import Problem
from gempy_gravinv.inversion._streamed import plan_setup

FAST = dict(progress=False, max_steps=150, warm_start_steps=100, dtype="float64")
CPU = torch.device("cpu")
GIB = 2**30


def test_the_plan_holds_streams_or_refuses_for_what_the_setup_needs():
    """In memory where G and a float64 panel of every row fit; streamed in panels where only the Gram and a panel do.

    1225 stations x 147,000 cells (a 70 x 70 x 30 mesh): the n x n matrices take 80 MiB;
    holding the float32 G and a float64 panel of every row takes 2.0 GiB more.
    """
    n, N = 1225, 147_000
    square = n * n * _streamed.GRAM_BYTES_PER_ENTRY
    held = plan_setup(n, N, CPU, free=4 * GIB)
    assert held.hold and held.panel_rows == n and held.refusal is None
    edge = int((square + n * N * 12) / 0.75)
    assert plan_setup(n, N, CPU, free=edge + 2).hold and not plan_setup(n, N, CPU, free=edge - 2).hold
    # a stored G is read where it is: one panel of every row needs 8 bytes per entry
    assert plan_setup(n, N, CPU, free=int((square + n * N * 8) / 0.75) + 2, stored=True).panel_rows == n
    plan = plan_setup(n, N, CPU, free=GIB, reserve=2**28)
    assert not plan.hold and plan.refusal is None
    expected = int((0.75 * GIB - 2**28 - square) // (8 * N))
    assert plan.panel_rows == expected and 1 < n / expected <= _streamed.MAX_PANELS
    assert plan.describe(n) == dict(design="streamed", panel_rows=expected, panels=-(-n // expected), reason=None)
    assert held.describe(n)["design"] == "in memory"
    # the n x n matrices do not fit: refused, naming the sizes and the memory
    small = plan_setup(n, N, CPU, free=80 * 2**20)
    assert small.panel_rows is None and "1225 x 147000" in small.refusal and "GiB free on cpu" in small.refusal
    assert plan_setup(n, N, CPU, free=80 * 2**20).describe(n)["design"] == "refused"
    # a panel fits but too many are needed
    thin = plan_setup(n, N, CPU, free=int((square + 8 * N * 20) / 0.75))
    assert thin.refusal is not None and "panels" in thin.refusal
    # rows that cannot be read again (a user's matrix split over ranks): held or refused
    assert plan_setup(n, N, CPU, free=GIB, streamable=False).refusal is not None
    assert plan_setup(n, N, CPU, free=4 * GIB, streamable=False).hold
    # a Gram product too costly is refused whatever the memory
    costly = plan_setup(20_000, 30_000, CPU, free=2**50).refusal
    assert "multiply-adds" in costly and "a cap on time, not memory" in costly  # more memory would not help
    assert "more memory (or a GPU)" in small.refusal


def _test_share(n_cells: int) -> int:
    """Free bytes the prior's test takes from the setup's memory (its images), as the plan counts them."""
    from gempy_gravinv.inversion._warmstart import prior_test_bytes

    return int(prior_test_bytes(n_cells) / _streamed.DESIGN_MEMORY_FRACTION) + 1


def _pair(case, regional, monkeypatch, free, **extra):
    """The same problem with its design in memory, and streamed in panels from the operator with ``free`` bytes."""
    import gempy_gravinv.inversion._problem as problem_module

    cfg = INRConfig.auto(bounds=case.bounds, regional=regional, **FAST, **extra)
    held = Problem(case.survey, case.mesh, cfg)
    assert held.setup_plan.panel_rows == case.survey.n_data
    op = GravityOperator(case.mesh, case.survey, device="cpu", store="matrix_free", memory_budget=300_000)
    monkeypatch.setattr(problem_module, "available_memory", lambda device: free)
    streamed = Problem(case.survey, case.mesh, cfg, operator=op)
    return held, streamed


def _check_start(prob, beta):
    """The start is the ridge model with a flat mean contrast (and regional) at the discrepancy λ.

    With ``A = G diag(s) / σ``, ``r = P (d - G m0) / σ`` (``P`` off the regional's
    columns): χ²/N = ``|r|² / n`` is the target, ``r`` is orthogonal to the whitened
    uniform response, and ``m0`` is affine in ``s ⊙ Aᵀ r`` with a positive slope
    (``λ w = Aᵀ r``): the normal equations, checked on the dense G.
    """
    from gempy_gravinv.inversion._warmstart import _scale

    m0 = prob.least_squares_start(beta)
    G = prob.op.dense().to(torch.float64) if prob.G is None else prob.G.to(torch.float64)
    std = prob.std.to(torch.float64)
    s = _scale(prob, beta, m0.device)
    proj = (lambda x: x) if prob.regional is None else prob.regional.project
    r = proj((prob.d.to(torch.float64) - G @ m0) / std)
    assert float(r @ r) / r.numel() == pytest.approx(prob.cfg.target_chi2, rel=1e-6)
    a0 = proj(G.sum(1) / std)
    assert abs(float(a0 @ r)) < 1e-8 * float(a0.norm() * r.norm())
    x = s * ((G * s[None, :] / std[:, None]).T @ r)
    X = torch.stack([torch.ones_like(x), x], 1)
    coef = torch.linalg.lstsq(X, m0[:, None]).solution[:, 0]
    assert float(coef[1]) > 0
    assert float((X @ coef - m0).abs().max()) < 1e-6 * float(m0.abs().max())


@pytest.mark.parametrize("regional", ["auto", "plane"])
def test_a_streamed_setup_gives_the_in_memory_setup_s_models(regional, monkeypatch):
    """Starts, leave-one-out scores and the prior's kurtosis agree whichever way the rows are read.

    The dipping block's 441 x 4851 design, with 25 MB free, is read from the operator in
    panels whose edges fall inside the operator's row blocks; both starts satisfy the
    normal equations of the ridge model they stand for.
    """
    case = synthetic.dipping_block(noise_seed=0)
    held, streamed = _pair(case, regional, monkeypatch, free=25_000_000 + _test_share(case.mesh.n_cells))
    plan = streamed.setup_plan
    assert not plan.hold and plan.refusal is None and streamed.design_refusal is None
    assert 1 < np.ceil(case.survey.n_data / plan.panel_rows) <= _streamed.MAX_PANELS
    for beta in (1.0, 2.0):
        a, b = held.least_squares_start(beta), streamed.least_squares_start(beta)
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * float(a.abs().max()))
        _check_start(held, beta)
    if regional == "auto":
        ra, rb = held.regional_selection, streamed.regional_selection
        assert ra["kind"] == rb["kind"]
        for kind, v in ra["loo_chi2"].items():  # it reads the Gram's weakest kept directions: looser
            assert rb["loo_chi2"][kind] == pytest.approx(v, rel=1e-4)
    pa, pb = held.prior_selection, streamed.prior_selection
    assert pa["prior"] == pb["prior"] == "compact"
    assert pb["excess_kurtosis"] == pytest.approx(pa["excess_kurtosis"], rel=1e-6)
    assert pb["standardised_kurtosis"] == pytest.approx(pa["standardised_kurtosis"], rel=1e-6)
    assert pb["p_value"] == pa["p_value"]


def test_the_gram_panels_and_the_adjoint_are_the_dense_products(monkeypatch):
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
    for source in (op, G):  # rows from the operator, or from a G held or stored
        monkeypatch.setattr(prob, "setup_rows", lambda source=source: source)
        for rows in (1, 5, 13, case.survey.n_data):
            K, a0 = _streamed.gram(prob, s, rows)
            torch.testing.assert_close(K, A @ A.T, rtol=1e-12, atol=1e-12 * float(K.abs().max()))
            torch.testing.assert_close(a0, G.sum(1) / std, rtol=1e-12, atol=0)
        torch.testing.assert_close(_streamed.adjoint(prob, s, v), A.T @ v, rtol=1e-12, atol=1e-12)
        V = torch.randn(case.survey.n_data, 3, generator=g, dtype=torch.float64)  # several right-hand sides
        torch.testing.assert_close(_streamed.adjoint(prob, s, V), A.T @ V, rtol=1e-12, atol=1e-12)


def test_the_run_reports_how_its_setup_read_the_design(monkeypatch):
    """``metrics.json`` says in memory, streamed (with the panels) or refused, and why; nothing without a setup."""
    import gempy_gravinv.inversion._problem as problem_module
    from gempy_gravinv import invert_inr

    case = synthetic.single_block(noise_seed=0)
    quick = dict(FAST, max_steps=20, warm_start_steps=20)
    n = case.survey.n_data
    res = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick))
    assert res.metrics_report()["closed_form_setup"] == dict(design="in memory", panel_rows=n, panels=1, reason=None)
    assert "closed_form_setup" not in invert_inr(case.survey, case.mesh,
                                                 INRConfig(bounds=case.bounds, **quick)).metrics_report()
    op = GravityOperator(case.mesh, case.survey, device="cpu", store="matrix_free", memory_budget=20_000)
    # room for the n x n matrices and about 95 kB besides: a few rows of the design at a time
    room = int(n * n * _streamed.GRAM_BYTES_PER_ENTRY / _streamed.DESIGN_MEMORY_FRACTION) + 95_000
    monkeypatch.setattr(problem_module, "available_memory", lambda device: room + _test_share(case.mesh.n_cells))
    res = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick), operator=op)
    setup = res.metrics_report()["closed_form_setup"]
    assert setup["design"] == "streamed" and 1 <= setup["panel_rows"] < n and setup["panels"] > 1, setup
    # the prior's test holds its images through the setup: without their share the same panels do not fit
    monkeypatch.setattr(problem_module, "available_memory", lambda device: room)
    fewer = Problem(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick), operator=op).setup_plan
    assert fewer.refusal is not None or fewer.panel_rows < setup["panel_rows"]
    monkeypatch.setattr(problem_module, "available_memory", lambda device: 2**16)
    setup = invert_inr(case.survey, case.mesh, INRConfig.auto(bounds=case.bounds, **quick),
                       operator=op).metrics_report()["closed_form_setup"]
    assert setup["design"] == "refused" and "GiB free on cpu" in setup["reason"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_streamed_setup_on_cuda_gives_the_cpu_setup_s_starts(monkeypatch):
    """The panels, the Gram and the adjoint on the GPU: the starts of the in-memory setup on the CPU."""
    import gempy_gravinv.inversion._problem as problem_module

    case = synthetic.dipping_block(noise_seed=0)
    cfg = INRConfig.auto(bounds=case.bounds, **FAST)
    held = Problem(case.survey, case.mesh, dataclasses.replace(cfg, device="cpu"))
    op = GravityOperator(case.mesh, case.survey, device="cuda", store="matrix_free", memory_budget=300_000)
    monkeypatch.setattr(problem_module, "available_memory", lambda device: 25_000_000)
    streamed = Problem(case.survey, case.mesh, dataclasses.replace(cfg, device="cuda"), operator=op)
    assert not streamed.setup_plan.hold and streamed.device.type == "cuda"
    for beta in (1.0, 2.0):
        a, b = held.least_squares_start(beta), streamed.least_squares_start(beta).cpu()
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * float(a.abs().max()))


def test_the_setup_plan_states_the_memory_it_counts_on():
    n, N = 1225, 147_000
    square = n * n * _streamed.GRAM_BYTES_PER_ENTRY
    held = plan_setup(n, N, CPU, free=4 * GIB)  # the float32 G held and a float64 panel of every row
    assert held.peak_gib(n, N, itemsize=4) == pytest.approx((square + n * N * (8 + 4)) / GIB)
    streamed = plan_setup(n, N, CPU, free=GIB, reserve=2**28)
    assert streamed.peak_gib(n, N, reserve=2**28) <= 0.75  # within its share of the free memory
