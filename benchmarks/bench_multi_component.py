"""A gradiometry survey (gz, gzz, gxz, gyz at every station) through our own API vs SimPEG.

Times, in one run on this machine:

- ``multi``: ``gempy_gravinv.make_operator(mesh, survey)`` on a mixed ``Survey`` (a
  ``MultiComponentOperator``: one ``GravityOperator`` per component, rows in the
  survey's order);
- ``singles``: the same per-component ``GravityOperator`` products called one by one
  (the composition's overhead is multi / singles);
- ``simpeg``: SimPEG's ``Simulation3DIntegral(engine="choclo")`` on ``survey.to_simpeg()``
  (float64 sensitivities), whose data equal ours with ``gz`` flipped (checked here).

for a dense build (``store="dense"`` / ``"ram"``) and a matrix-free forward
(``"matrix_free"`` / ``"forward_only"``), and prints SimPEG / ours (> 1: ours faster).
Steady state: the median of ``--repeat`` calls after one untimed warm-up call (numba's
JIT, ``torch.compile``).

Usage::

    python benchmarks/bench_multi_component.py                 # 30 x 30 x 15 cells, 15 x 15 stations
    python benchmarks/bench_multi_component.py --n 40 --stations 20
    python benchmarks/bench_multi_component.py --compile        # our kernels compiled (first use not timed)

Timings on a shared machine are noisy: compare ratios from the same run only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _median(fn, repeat: int) -> tuple[float, object]:
    out, ts = fn(), []  # one warm-up call, not timed
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), out


def main() -> None:
    import discretize
    import torch
    from simpeg import maps
    from simpeg.potential_fields import gravity

    from gempy_gravinv import GravityOperator, PrismMesh, Survey, make_operator
    from gempy_gravinv._components import SIMPEG_SIGN

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="cells per horizontal axis (half as many vertically)")
    ap.add_argument("--stations", type=int, default=15, help="stations per axis")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="our kernels compiled with torch.compile")
    args = ap.parse_args()

    n, h = args.n, 10.0
    mesh = discretize.TensorMesh([[(h, n)], [(h, n)], [(h, n // 2)]], origin=(0.0, 0.0, -h * (n // 2)))
    rng = np.random.default_rng(0)
    rho_gcc = rng.normal(0.0, 0.2, mesh.n_cells)
    x = np.linspace(h, (n - 1) * h, args.stations)
    xx, yy = np.meshgrid(x, x)
    st = np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, 5.0)])
    comps = ["gz", "gzz", "gxz", "gyz"]
    sv = Survey(np.repeat(st, len(comps), axis=0), components=np.tile(comps, len(st)))
    pm = PrismMesh.from_discretize(mesh)
    rho = torch.as_tensor(rho_gcc * 1000.0)
    print(f"{mesh.n_cells} cells, {len(st)} stations x {len(comps)} components = {sv.n_data} data, "
          f"torch threads {torch.get_num_threads()}")

    def simpeg_sim(store):
        return gravity.simulation.Simulation3DIntegral(mesh, survey=sv.to_simpeg(), rhoMap=maps.IdentityMap(
            nP=mesh.n_cells), engine="choclo", store_sensitivities=store, sensitivity_dtype=np.float64)

    rows = []
    t_ours, op = _median(lambda: make_operator(pm, sv, device="cpu", store="dense", compile=args.compile), args.repeat)
    t_ref, _ = _median(lambda: simpeg_sim("ram").G, args.repeat)
    rows.append(("dense build", t_ours, None, t_ref))

    op = make_operator(pm, sv, device="cpu", store="matrix_free", compile=args.compile)
    singles = [GravityOperator(pm, sv.locations[r], device="cpu", store="matrix_free", compile=args.compile,
                               component=c) for c, r in sv.component_groups().items()]
    sim = simpeg_sim("forward_only")
    t_ours, d = _median(lambda: op.forward(rho), args.repeat)
    t_single, _ = _median(lambda: [s.forward(rho) for s in singles], args.repeat)
    t_ref, d_ref = _median(lambda: sim.dpred(rho_gcc), args.repeat)
    rows.append(("matrix-free forward", t_ours, t_single, t_ref))
    ours_simpeg = d.numpy() * np.array([SIMPEG_SIGN[c] for c in sv.components])
    err = float(np.max(np.abs(ours_simpeg - d_ref)) / np.max(np.abs(d_ref)))

    print(f"{'':22s} {'multi s':>9s} {'singles s':>10s} {'SimPEG s':>9s} {'SimPEG/multi':>13s} {'multi/singles':>14s}")
    for name, a, b, c in rows:
        bs = "" if b is None else f"{b:10.3f}"
        ratio = "" if b is None else f"{a / b:14.2f}"
        print(f"{name:22s} {a:9.3f} {bs:>10s} {c:9.3f} {c / a:13.2f} {ratio:>14s}")
    print(f"max |ours (SimPEG signs) - SimPEG| / max |SimPEG| = {err:.2e}")


if __name__ == "__main__":
    main()
