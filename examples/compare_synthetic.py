"""INR vs SimPEG (L2 and sparse) on a synthetic case with known truth, same mesh and metrics.

Also shows the drop-in simulation: a plain SimPEG L2 inversion written with SimPEG's own
classes, once on SimPEG's ``Simulation3DIntegral`` and once on
``gempy_gravinv.simpeg.Simulation3DIntegral``, reaching the same model.

    python examples/compare_synthetic.py --case dipping_block --out results/compare_dipping_block
    python examples/compare_synthetic.py --case smooth_grf --quick      # small GRF, few steps

Outputs in OUT: comparison.md/.csv/.json (χ²/N, RMS misfit, RMS density error, r, r per
layer, wall time, peak memory, device), sections.png (same sections and colour scale),
data_<method>.png, models.npz and UBC model files. Units: kg/m³ contrast, mGal positive down.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def drop_in_demo(case) -> float:
    """A SimPEG inversion, unchanged but for the simulation class; returns the model difference."""
    from simpeg import data_misfit, directives, inverse_problem, inversion, maps, optimization, regularization
    from simpeg.potential_fields import gravity

    import gempy_gravinv.simpeg as ggs

    mesh = case.mesh.source
    survey = case.survey.to_simpeg()
    data = case.survey.to_simpeg_data(survey)  # SimPEG's sign: upward gz
    models = {}
    extra = {"engine": "choclo", "sensitivity_dtype": np.float64}  # the same options for both classes
    for label, cls in (("SimPEG", gravity.simulation.Simulation3DIntegral),
                       ("gempy_gravinv", ggs.Simulation3DIntegral)):
        t0 = time.perf_counter()
        sim = cls(mesh, survey=survey, rhoMap=maps.IdentityMap(nP=mesh.n_cells), **extra)
        dmis = data_misfit.L2DataMisfit(data=data, simulation=sim)
        reg = regularization.WeightedLeastSquares(mesh)
        opt = optimization.ProjectedGNCG(maxIter=20, lower=-0.6, upper=0.6, cg_maxiter=30, cg_rtol=1e-3,
                                         cg_atol=0.0)
        prob = inverse_problem.BaseInvProblem(dmis, reg, opt)
        dirs = [directives.UpdateSensitivityWeights(every_iteration=False),
                directives.BetaEstimate_ByEig(beta0_ratio=10.0, random_seed=0),
                directives.BetaSchedule(coolingFactor=2.0, coolingRate=1),
                directives.TargetMisfit(chifact=1.0), directives.UpdatePreconditioner()]
        m = inversion.BaseInversion(prob, directiveList=dirs).run(np.zeros(mesh.n_cells))
        models[label] = m
        print(f"drop-in demo: {label:>14} simulation: {time.perf_counter() - t0:.1f} s")
    a, b = models["gempy_gravinv"], models["SimPEG"]
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    print(f"drop-in demo: relative model difference {rel:.2e}")
    return rel


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("dipping_block", "smooth_grf"), default="dipping_block")
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true", help="few INR steps / SimPEG iterations (smoke test)")
    ap.add_argument("--methods", nargs="+", default=["inr", "inr_paper", "simpeg_l2", "simpeg_sparse"])
    ap.add_argument("--no-drop-in", action="store_true", help="skip the drop-in simulation demo")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")

    from gempy_gravinv import compare

    out = args.out or f"results/compare_{args.case}"
    comp = compare.run_case(args.case, out, quick=args.quick, methods=args.methods, device=args.device)
    print((Path(out) / "comparison.md").read_text())
    if not args.no_drop_in:
        from gempy_gravinv.cases.synthetic import dipping_block, single_block

        drop_in_demo(single_block() if args.quick else dipping_block())
    return comp


if __name__ == "__main__":
    main()
