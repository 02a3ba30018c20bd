"""The row-layout kernels and octree corner nodes behind the fast SimPEG drop-in paths.

- ``kernel_block3`` & co. take coordinates as (3, n) rows (unit stride, so compiled CPU
  loops vectorise); they must equal the (n, 3) kernels bit for bit, every component.
- A discretize TreeMesh's corner nodes come from its own node numbering; the cells'
  corners must be the prisms' corners and G must equal the cell-by-cell reference.
- Compiled dense rows and ``jtj_diag`` (fused corner gathers) equal the eager ones.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

discretize = pytest.importorskip("discretize")

import gempy_gravinv as gg  # noqa: E402
from gempy_gravinv._components import COMPONENTS, kernel_kind  # noqa: E402
from gempy_gravinv._kernels import (  # noqa: E402
    as_rows3,
    kernel_block,
    kernel_block3,
    kernel_block3_t,
    kernel_block_t,
    kernel_matvec,
    kernel_matvec3,
    kernel_rmatvec,
    kernel_rmatvec3,
)

T = dict(dtype=torch.float64)


@pytest.fixture(scope="module")
def tree():
    """A small octree refined around a ball, some cells inactive, stations above it."""
    mesh = discretize.TreeMesh([[(10.0, 16)], [(10.0, 16)], [(10.0, 8)]], origin="CCN", diagonal_balance=True)
    mesh.refine_ball(np.r_[0.0, 0.0, -25.0], 30.0, mesh.max_level)
    rng = np.random.default_rng(11)
    active = rng.random(mesh.n_cells) > 0.2
    st = np.c_[rng.uniform(-60, 60, 9), rng.uniform(-60, 60, 9), rng.uniform(0.5, 20.0, 9)]
    return mesh, active, st


@pytest.mark.parametrize("kernel", ["prism", "point"])
def test_row_layout_kernels_equal_point_layout(kernel):
    rng = np.random.default_rng(5)
    st = torch.tensor(rng.normal(size=(7, 3)) * 30, **T)
    cols = torch.tensor(rng.normal(size=(23, 3)) * 30, **T)
    st3, cols3 = as_rows3(st), as_rows3(cols)
    assert st3.shape == (3, 7) and st3.is_contiguous()
    w, r = torch.tensor(rng.normal(size=23), **T), torch.tensor(rng.normal(size=7), **T)
    for comp in COMPONENTS:
        kind = kernel_kind(kernel, comp)
        K = kernel_block(st, cols, kind)
        assert torch.isfinite(K).all() and K.abs().max() > 0
        assert torch.equal(kernel_block3(st3, cols3, kind), K)
        assert torch.equal(kernel_block3_t(st3, cols3, kind), kernel_block_t(st, cols, kind))
        assert torch.equal(kernel_block_t(st, cols, kind), K.T)
        torch.testing.assert_close(kernel_matvec3(st3, cols3, w, kind), K @ w, rtol=1e-13, atol=0)
        torch.testing.assert_close(kernel_rmatvec3(st3, cols3, r, kind), K.T @ r, rtol=1e-13, atol=0)
        assert torch.equal(kernel_matvec(st, cols, w, kind), kernel_matvec3(st3, cols3, w, kind))
        assert torch.equal(kernel_rmatvec(st, cols, r, kind), kernel_rmatvec3(st3, cols3, r, kind))


def test_tree_corner_nodes_are_the_prism_corners(tree):
    mesh, active, st = tree
    pm = gg.PrismMesh.from_discretize(mesh, active)
    nodes, index = pm.corner_nodes()
    assert index.shape == (pm.n_cells, 8) and nodes.shape[0] == np.unique(index).size  # only used nodes
    b = pm.bounds
    for k in range(8):
        corner = np.c_[b[:, 1] if k & 1 else b[:, 0], b[:, 3] if k & 2 else b[:, 2], b[:, 5] if k & 4 else b[:, 4]]
        np.testing.assert_allclose(nodes[index[:, k]], corner, rtol=0, atol=1e-9)
    # a node shared by neighbours is one node: fewer nodes than half the corners on an octree
    assert nodes.shape[0] < 0.5 * 8 * pm.n_cells
    # G from shared nodes equals the cell-by-cell reference (8 corners per cell, no sharing)
    sv = gg.Survey(st)
    g_nodes = gg.GravityOperator(pm, sv, device="cpu", store="dense", compile=False).dense()
    g_cells = gg.GravityOperator(pm, sv, device="cpu", store="dense", method="cells", compile=False).dense()
    torch.testing.assert_close(g_nodes, g_cells, rtol=1e-9, atol=1e-12 * g_cells.abs().max().item())


@pytest.mark.slow
def test_compiled_dense_rows_and_jtj_equal_eager(tree):
    """Fused corner gathers (compiled) give the eager G and diag(GᵀW²G); a one-off compilation of ~10-30 s."""
    mesh, active, st = tree
    pm = gg.PrismMesh.from_discretize(mesh, active)
    sv = gg.Survey(st)
    eager = gg.GravityOperator(pm, sv, device="cpu", store="matrix_free", compile=False)
    comp = gg.GravityOperator(pm, sv, device="cpu", store="matrix_free", compile=True, memory_budget=20_000)
    assert comp._fused_gather() and len(list(comp._dense_rows())) > 1  # several row blocks
    G = eager.dense()
    torch.testing.assert_close(comp.dense(), G, rtol=1e-12, atol=1e-14 * G.abs().max().item())
    w = torch.tensor(np.random.default_rng(2).uniform(0.5, 2.0, len(st)), **T)
    torch.testing.assert_close(comp.jtj_diag(w), ((G * w[:, None]) ** 2).sum(0), rtol=1e-11, atol=0)
    assert comp._use_compiled  # did not silently fall back
