"""Geology-only vs INR-only vs hybrid (geology + INR residual) on a GemPy synthetic case.

The case (:func:`gempy_gravinv.cases.geology.geology_case`): a three-unit layered GemPy
model (cover -300, middle 0, basement +250 kg/m³, dipping contacts) on a 20 x 20 x 10 mesh
of 50 m cells, plus a +400 kg/m³ block (4 x 5 x 2 cells) the GemPy model does not contain;
400 stations 1 m above the top, noise σ = 1% of std(g_z).

Runs (same INR trainer, ``invert_inr``, same settings apart from the density backend):

1. ``geology``: the GemPy model with its unit contrasts fitted to the data (starting
   from ``--prior-error`` off the truth). Cannot reach χ²/N ≈ 1: the body is missing.
2. ``inr``: an INR alone (``INRConfig()``, depth weighting), early-stopped at χ²/N ≈ 1.
3. ``hybrid``: geology with the true unit contrasts + bounded INR residual, χ²/N ≈ 1.
4. ``hybrid_units``: as 3 with the residual confined to ``--residual-units`` (default
   the middle unit, where the body is: geological knowledge of where the unknown lies).
5. ``hybrid_learned``: as 4 but the unit contrasts start ``--prior-error`` off the truth
   and are learned jointly with the residual.

Metrics (``gempy_gravinv.metrics.evaluate``): RMS density error over the whole model and
over the body cells, Pearson r, χ²/N; written to ``OUT/metrics.json`` with figures.

    python examples/hybrid_synthetic.py --out results/hybrid_synthetic [--max-steps 1500]
        [--inr-steps 4000] [--runs geology,inr,hybrid,hybrid_units,hybrid_learned] [--quick]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/hybrid_synthetic")
    ap.add_argument("--max-steps", type=int, default=1500, help="Adam steps (geology and hybrid runs)")
    ap.add_argument("--inr-steps", type=int, default=4000, help="Adam steps of the INR-only run")
    ap.add_argument("--runs", default="geology,inr,hybrid,hybrid_units,hybrid_learned")
    ap.add_argument("--residual-units", default="middle", help="comma-separated units (hybrid_units/learned)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prior-error", type=float, default=0.2,
                    help="relative error of the starting unit contrasts in runs 1 and 4")
    ap.add_argument("--quick", action="store_true", help="tiny mesh and few steps (smoke test)")
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from gempy_gravinv import metrics
    from gempy_gravinv.cases.geology import geology_case
    from gempy_gravinv.density import GeologyDensity, HybridDensity
    from gempy_gravinv.inversion import INRConfig, invert_inr

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        case = geology_case(shape=(8, 8, 5), cell_size=125.0, body=((4, 6), (2, 4), (1, 3)))
        steps = min(args.max_steps, 30)
    else:
        case = geology_case()
        steps = args.max_steps
    # settings pinned here (not the moving INRConfig() preset) so the numbers reproduce
    cfg = INRConfig(encoding="positional", encoding_options={"n_frequencies": 2}, width=128, depth=3,
                    activation="leaky_relu", output="sigmoid", bounds=(-600.0, 600.0), init_value=0.0,
                    last_layer_gain=0.1, normalization="isotropic", net_dtype="float32",
                    weighting="depth", weighting_power=2.0, weighting_mode="gradient", lr=1e-2, lr_schedule="constant",
                    early_stopping=True, target_chi2=1.0, stop_tol=0.05, patience=1, overfit_patience=1,
                    max_steps=steps, seed=args.seed, progress=False)
    rho_true = case.unit_densities
    rho_prior = rho_true * (1.0 + args.prior_error) + np.where(rho_true == 0, 50.0 * args.prior_error / 0.2, 0.0)
    geo_true = GeologyDensity(case.geo_model, rho_true, mesh=case.mesh)
    geo_prior = GeologyDensity(case.geo_model, rho_prior, mesh=case.mesh)
    body = case.body_mask

    def score(name, model, pred, t, extra=None):
        m = metrics.evaluate(model=model, true=case.model, pred=pred, survey=case.survey, mesh=case.mesh,
                             wall_time=t)
        row = {"chi2_per_datum": m["chi2_per_datum"], "rms_error_kgm3": m["rms_error_kgm3"],
               "rms_error_body_kgm3": float(np.sqrt(np.mean((model[body] - case.model[body]) ** 2))),
               "rms_error_outside_body_kgm3": float(np.sqrt(np.mean((model[~body] - case.model[~body]) ** 2))),
               "pearson_r": m["pearson_r"],
               "body_recovered_mean_kgm3": float(np.mean(model[body] - case.geology_model[body])),
               "wall_time_s": t}
        row.update(extra or {})
        print(f"{name:15s} chi2/N={row['chi2_per_datum']:8.3f} rms={row['rms_error_kgm3']:6.1f} "
              f"rms_body={row['rms_error_body_kgm3']:6.1f} r={row['pearson_r']:.3f} t={t:.1f}s", flush=True)
        return row

    results: dict = {"case": case.meta, "config": cfg.to_dict(), "prior_unit_densities_kgm3": rho_prior.tolist()}
    rows = {}
    # 0. the geology with the true unit contrasts, no fitting (reference)
    with torch.no_grad():
        m0 = geo_true(torch.as_tensor(case.mesh.cell_centers)).numpy()
    from gempy_gravinv import GravityOperator

    op = GravityOperator(case.mesh, case.survey, store="dense")
    with torch.no_grad():
        p0 = op(torch.as_tensor(m0)).numpy()
    rows["geology_true_densities"] = score("geology(true)", m0, p0, 0.0)

    units = [u.strip() for u in args.residual_units.split(",") if u.strip()]
    runs = {
        "geology": dict(density=geo_prior.set_learn_densities(True), early_stopping=False),
        "inr": dict(density=None, max_steps=steps if args.quick else args.inr_steps),
        "hybrid": dict(density=lambda mesh, seed: HybridDensity(geo_true, **cfg.field_options(mesh, seed))),
        "hybrid_units": dict(density=lambda mesh, seed: HybridDensity(
            geo_true, residual_units=units, **cfg.field_options(mesh, seed))),
        "hybrid_learned": dict(density=lambda mesh, seed: HybridDensity(
            geo_prior, learn_densities=True, residual_units=units, **cfg.field_options(mesh, seed))),
    }
    wanted = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(wanted) - set(runs))
    if unknown:
        raise ValueError(f"unknown run(s) {unknown}; choose from {sorted(runs)}")
    results["residual_units"] = units
    fields = {}
    for name in wanted:
        kw = runs[name]
        t0 = time.perf_counter()
        res = invert_inr(case.survey, case.mesh, cfg, operator=op, true_model=case.model, **kw)
        t = time.perf_counter() - t0
        extra = {"steps": res.timings["steps"], "best_step": res.best_step, "stop_reason": res.stop_reason}
        fld = res.field
        g = getattr(fld, "geology", fld if isinstance(fld, GeologyDensity) else None)
        if g is not None:
            extra["unit_densities_kgm3"] = g.unit_densities().detach().tolist()
        rows[name] = score(name, res.model, res.predicted, t, extra)
        fields[name] = res.model
    results["runs"] = rows
    results["floor_zero_kgm3"] = metrics.floor(case.model, "zero")
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    np.savez(out / "models.npz", true=case.model, **fields)
    if not args.no_figures:
        try:
            import matplotlib

            matplotlib.use("Agg")
            from gempy_gravinv.plotting import plot_sections

            fig = plot_sections(case.mesh, dict(fields), true=case.model)
            fig = getattr(fig, "figure", fig)
            fig.savefig(out / "sections.png", dpi=110, bbox_inches="tight")
            # what each run adds to the true geology, against the body it should find
            fig = plot_sections(case.mesh, {k: v - case.geology_model for k, v in fields.items()},
                                true=case.body_model, true_label="true body")
            fig = getattr(fig, "figure", fig)
            fig.savefig(out / "sections_minus_geology.png", dpi=110, bbox_inches="tight")
        except Exception as exc:  # figures are a bonus here
            print(f"figure failed: {exc}")
    print(f"wrote {out / 'metrics.json'}")
    return results


if __name__ == "__main__":
    main()
