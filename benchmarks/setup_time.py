"""Setup time of ``auto()`` on suite cases (s, best of ``--repeats``, one torch thread).

Usage::

    python benchmarks/setup_time.py --cases dike,fine_10m,tutorial_topo

Builds each case (noise seed 0) and times what ``invert_inr`` does before its first
training step: the operator, the depth model, the regional's leave-one-out choice, the
prior's least-squares image (and the lattice's evidence where the prior is smooth) and
the least-squares start. Run it at two commits (the earlier one from a ``git worktree``
on ``PYTHONPATH``) to compare their setup on the same machine; the suite
(``benchmarks/suite.py``) gives the ratios against SimPEG.
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="dike,fine_10m,tutorial_topo,two_bodies")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import gempy_gravinv as gg
    from gempy_gravinv._mesh import as_prism_mesh
    from gempy_gravinv.cases import suite
    from gempy_gravinv.inversion._problem import Problem

    print(f"gempy_gravinv from {gg.__file__}")
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        case = suite.build_case(name, noise_seed=0)
        mesh = as_prism_mesh(case.mesh)
        cfg = gg.INRConfig.auto(bounds=case.bounds, progress=False)
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            Problem(case.survey, mesh, cfg)
            best = min(best, time.perf_counter() - t0)
        print(f"{name}: setup {best:.2f} s ({case.survey.n_data} stations x {mesh.n_cells} cells)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
