"""Bayesian inversion of GemPy's own ONE_FAULT_GRAVITY example, as a GemPy user runs it.

GemPy builds the model (a fault series and a series of two surfaces, a centered grid over
six stations, unit densities 2, 2, 3, 2 g/cm³ in ``geophysics_input``). Here the
orientation of ``surface1`` is tilted 20° to the east (the "truth"), synthetic data are
made from it with 5 µGal noise, and the dip of ``surface1`` and the density of
``surface2`` are sampled from priors that start away from the truth. The user code after
building the model is five lines (marked below)::

    problem = from_geomodel(geo_model, gz=gz, std=0.005,
                            densities={"surface2": (800.0, 300.0)}, dips={"surface1": (15.0, 5.0)})
    idata = problem.run()
    plot_arviz(idata, "out/figures")
    plot_lithology_gempy(lithology_fields(problem, idata), "out/figures")
    gm_post = posterior_geomodel(problem, idata)

    .venv/bin/python examples/bayes_one_fault.py -o out/
    .venv/bin/python examples/bayes_one_fault.py --samples 50 --warmup 50 --chains 1 -o out/   # quick

Writes posterior.nc (ArviZ: unit / orientation names as coordinates, units attributes,
log-likelihood), the ArviZ figures (trace, rank, pair, energy, PPC) and the gempy-viewer
lithology sections (posterior mean, probability per unit and entropy from each draw's
hard lithology), and prints the 90% intervals against the truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TRUE_DIP, TRUE_RHO, SIGMA = 20.0, 1000.0, 0.005  # deg, kg/m³ (3.0 - 2.0 g/cm³), mGal


def build_geomodel(dip_deg: float = TRUE_DIP):
    """GemPy's ONE_FAULT_GRAVITY example with surface1's orientation dipping ``dip_deg`` to the east."""
    import gempy as gp
    from gempy.core.data.enumerators import ExampleModel

    geo_model = gp.generate_example_model(ExampleModel.ONE_FAULT_GRAVITY, compute_model=False)
    geo_model.interpolation_options.kernel_options.compute_condition_number = False
    d = np.radians(dip_deg)
    gp.modify_orientations(geo_model, slice=1, G_x=np.sin(d), G_y=0.0, G_z=np.cos(d))
    return geo_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--chains", type=int, default=2, help="chains, in parallel processes")
    p.add_argument("--n-cells", type=int, default=2000, help="cells of the default mesh over the extent")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("-o", "--output", default="bayes_one_fault_output")
    a = p.parse_args(argv)

    from gempy_gravinv.bayes import (
        from_geomodel,
        lithology_fields,
        plot_arviz,
        plot_lithology_gempy,
        posterior_geomodel,
        save_netcdf,
    )

    geo_model = build_geomodel()
    # synthetic data from the truth (what a survey would measure), 5 µGal noise
    truth = from_geomodel(geo_model, densities={"surface2": 1.0}, n_cells=a.n_cells).predict()
    gz = truth + np.random.default_rng(0).normal(0.0, SIGMA, truth.size)

    # ---- the user's five lines -------------------------------------------------------
    problem = from_geomodel(geo_model, gz=gz, std=SIGMA, n_cells=a.n_cells,
                            densities={"surface2": (800.0, 300.0)}, dips={"surface1": (15.0, 5.0)})
    idata = problem.run(chains=a.chains, num_samples=a.samples, warmup=a.warmup, progress=True)
    out = Path(a.output)
    figs = [] if a.no_figures else plot_arviz(idata, out / "figures")
    figs += [] if a.no_figures else plot_lithology_gempy(lithology_fields(problem, idata), out / "figures")
    gm_post = posterior_geomodel(problem, idata)  # for gpv.plot_2d / gpv.plot_3d
    # -----------------------------------------------------------------------------------

    save_netcdf(idata, out / "posterior.nc")
    for var, t in (("densities", TRUE_RHO), ("dips", TRUE_DIP)):
        lo, hi = np.percentile(idata.posterior[var].values.ravel(), [5, 95])
        print(f"{var}: 90% interval [{lo:.1f}, {hi:.1f}], truth {t:g}: {'inside' if lo < t < hi else 'OUTSIDE'}")
    print(f"posterior-mean surface1 pole vector: {gm_post.orientations_copy.df.iloc[1][['G_x', 'G_z']].tolist()}")
    print("\n".join(problem.notes))
    print(f"figures: {len(figs)} in {out / 'figures'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
