"""``gempy-gravinv reproduce-paper``: the INR paper's two cases, paper settings vs ours."""

from __future__ import annotations

import argparse

HELP = "rerun the INR paper's cases (dipping block, smooth GRF) with its settings and ours"

DESCRIPTION = """\
Reproduce Mishra et al., "Three-dimensional inversion of gravity data using implicit
neural representations" (arXiv 2510.17876) and compare with our settings.

dipping_block  paper settings on the paper's geometry (stations inside the top layer,
               its sensitivity matrix with its kernel artefact) vs our settings on our
               geometry (mesh top at z = 0, stations 1 m above).
smooth_grf     the paper's own GRF realization (its generator, seed 41: floor 403.5
               kg/m³), 40 x 40 x 20 cells of 500 m, 1,600 stations (--quick: 20 x 20 x
               10 of 1 km): paper settings on the paper's geometry (stations at the
               centres of top-layer cells, its sensitivity matrix and data) vs ours on
               our geometry (stations 1 m above the mesh, exact prisms): the spectral
               preset (a one-layer Fourier-feature INR whose Gaussian posterior is solved
               in closed form), the periodic one (an MLP on the same kind of features;
               both assume the field wraps around the box, as the generator's does) and
               the smooth one (no wrap).

Prints RMS density error (kg/m³, beside the trivial-model floor), Pearson r, χ²/N and
time for each, beside the anchors (the paper's public code rerun on a CPU, SimPEG on
the same cases, the zero model), and writes metrics.json (+ figures and
model files per run) into -o DIR.
"""

#: Anchors (the paper's public code rerun on a CPU, SimPEG 0.25 on the same cases, the zero
#: model) and the GRF oracle of benchmarks/grf_oracle.py on the paper's realization
#: (--generator paper --seeds 41): (label, rms kg/m³ or range, r or range, chi2/N, note)
ANCHORS = {
    "dipping_block": [
        ("paper INR (public code, CPU rerun)", "59-64", "0.63-0.70", "1.7-2.0", "11-25 s"),
        ("paper repo Tikhonov", "69", "", "", ""),
        ("paper repo TV", "67", "", "", ""),
        ("SimPEG L2 + sensitivity weighting", "68.0", "0.55", "", "2.3 s"),
        ("SimPEG sparse (p=0, IRLS)", "52.1", "0.78", "1.21", "4 s"),
        ("zero model", "83.2", "", "", ""),
    ],
    "smooth_grf": [
        ("paper positional (of 403.5 floor)", "166 (0.41)", "0.91", "", ""),
        ("oracle, generator's cov. (grf_oracle.py)", "103 (0.255)", "0.967", "0.77", ""),
        ("same cov. without the wrap (grf_oracle.py)", "183 (0.453)", "0.894", "1.11", ""),
        ("paper hash (of 403.5 floor)", "206 (0.51)", "0.86", "", ""),
        ("SimPEG L2, true mean ref. (of 364 floor)", "181 (0.50)", "0.88", "", "6 s"),
    ],
}

#: targets our settings are held to on the two cases
TARGETS = {
    "dipping_block": "paper settings: RMS within ±10% of 59-64 kg/m³; ours: RMS <= 45, r >= 0.85, "
                     "chi2/N in [0.9, 1.1], <= 10 s on 2 CPU cores",
    "smooth_grf": "ours: RMS <= 0.33 x constant-mean floor, r >= 0.95",
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``reproduce-paper`` sub-command."""
    from ._common import int_at_least

    p = subparsers.add_parser("reproduce-paper", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="all", choices=["dipping_block", "smooth_grf", "all"],
                   help="which case to run (default all)")
    p.add_argument("--quick", action="store_true",
                   help="smaller GRF mesh and capped steps (smoke test; numbers are not the paper's)")
    p.add_argument("-o", "--output", default="reproduce_output", metavar="DIR", help="output folder")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="noise seed of the cases")
    p.add_argument("--grf-seed", type=int_at_least(0), default=41,
                   help="GRF realization seed, paper generator (default 41: the paper's field)")
    p.add_argument("--threads", type=int_at_least(1), default=None, metavar="N",
                   help="torch threads (default: all cores; use 1 on a busy, shared CPU, where several "
                        "threads can be many times slower; results depend slightly on the thread count)")
    from ._common import add_overwrite_argument

    add_overwrite_argument(p)
    return p


def _row(label: str, res) -> dict:
    m = res.metrics or {}
    return {"run": label, "rms_error_kgm3": m.get("rms_error_kgm3"), "floor_zero_kgm3": m.get("floor_zero_kgm3"),
            "floor_mean_kgm3": m.get("floor_mean_kgm3"), "rms_over_mean_floor": m.get("rms_error_over_floor"),
            "pearson_r": m.get("pearson_r"), "chi2_per_datum": res.chi2, "steps": res.timings["steps"],
            "train_s": res.timings["train"], "stop_reason": res.stop_reason}


def _fmt(v, spec: str) -> str:
    return "" if v is None else format(v, spec)


def print_table(case: str, rows: list[dict]) -> None:
    """Print our runs and the anchors side by side."""
    print(f"\n== {case}")
    print(f"{'run':44s} {'RMS kg/m3':>12s} {'/floor':>7s} {'r':>6s} {'chi2/N':>7s} {'time':>8s}")
    for r in rows:
        floor = r.get("rms_over_mean_floor") if case == "smooth_grf" else r.get("rms_over_zero_floor")
        print(f"{r['run']:44s} {_fmt(r['rms_error_kgm3'], '12.1f')} {_fmt(floor, '7.2f')} "
              f"{_fmt(r['pearson_r'], '6.3f')} {_fmt(r['chi2_per_datum'], '7.3f')} "
              f"{_fmt(r.get('train_s'), '7.1f')}s")
    for label, rms, rr, chi, note in ANCHORS[case]:
        print(f"{'[anchor] ' + label:44s} {rms:>12s} {'':>7s} {rr:>6s} {chi:>7s} {note:>8s}")
    print(f"targets: {TARGETS[case]}")


def run_dipping_block(out, quick: bool, device: str, figures: bool, seed: int = 0,
                      threads: int | None = 1) -> list[dict]:
    """Paper settings on the paper geometry, ours on ours; returns table rows."""
    from gempy_gravinv.cases.synthetic import dipping_block, paper_sensitivity
    from gempy_gravinv.inversion import INRConfig, invert_inr
    from gempy_gravinv.output import save_inversion

    rows = []
    case_p = dipping_block(noise_seed=seed, paper_geometry=True)
    G = paper_sensitivity(case_p.mesh, case_p.survey.locations)
    cfg_p = INRConfig.paper(device=device, progress=True, num_threads=threads)
    if quick:
        cfg_p.max_steps, cfg_p.min_steps = 60, 20
    res_p = invert_inr(case_p.survey, case_p.mesh, cfg_p, true_model=case_p.model, operator=G)
    save_inversion(res_p, out / "dipping_block_paper", figures=figures, name="paper")
    rows.append(_row("paper settings, paper geometry", res_p))
    case_o = dipping_block(noise_seed=seed)
    cfg_o = INRConfig.compact(device=device, progress=True, num_threads=threads)
    if quick:
        cfg_o.max_steps = 100
    res_o = invert_inr(case_o.survey, case_o.mesh, cfg_o, true_model=case_o.model)
    save_inversion(res_o, out / "dipping_block_ours", figures=figures, name="ours")
    rows.append(_row("ours (compact), our geometry", res_o))
    for r in rows:
        r["rms_over_zero_floor"] = (None if r["rms_error_kgm3"] is None or not r["floor_zero_kgm3"]
                                    else r["rms_error_kgm3"] / r["floor_zero_kgm3"])
    return rows


def run_smooth_grf(out, quick: bool, device: str, figures: bool, seed: int = 0,
                   threads: int | None = 1, grf_seed: int = 41) -> list[dict]:
    """Paper settings on the paper's geometry vs ours on ours; returns table rows.

    Both use the same GRF realization (the paper's generator).
    """
    from gempy_gravinv.cases.synthetic import paper_sensitivity, smooth_grf
    from gempy_gravinv.inversion import INRConfig, invert_inr
    from gempy_gravinv.output import save_inversion

    kw = dict(shape=(20, 20, 10), cell_size=1000.0) if quick else {}
    kw.update(seed=grf_seed, noise_seed=seed, generator="paper")
    case_p = smooth_grf(paper_geometry=True, **kw)
    case_o = smooth_grf(**kw)
    G = paper_sensitivity(case_p.mesh, case_p.survey.locations)
    cfg_p = INRConfig.paper(case="smooth_grf", bounds=tuple(case_p.bounds), device=device, progress=True,
                            num_threads=threads)
    cfg_g = INRConfig.spectral(device=device, progress=True, num_threads=threads)
    cfg_o = INRConfig.periodic(device=device, progress=True, bounds=tuple(case_o.bounds), num_threads=threads)
    cfg_s = INRConfig.smooth(device=device, progress=True, bounds=tuple(case_o.bounds), num_threads=threads)
    if quick:
        cfg_p.max_steps, cfg_p.min_steps = 60, 20
        cfg_o.max_steps = cfg_s.max_steps = 100
    rows = []
    for label, case, cfg, name, op in (("paper settings, paper geometry", case_p, cfg_p, "paper", G),
                                       ("ours (spectral preset), our geometry", case_o, cfg_g, "ours", None),
                                       ("ours (periodic preset), our geometry", case_o, cfg_o, "periodic", None),
                                       ("ours (smooth, no wrap), our geometry", case_o, cfg_s, "smooth", None)):
        res = invert_inr(case.survey, case.mesh, cfg, true_model=case.model, operator=op)
        save_inversion(res, out / f"smooth_grf_{name}", figures=figures, name=name)
        rows.append(_row(label, res))
    return rows


def run(args: argparse.Namespace) -> int:
    """Run the chosen cases and print the table; returns 0."""
    from gempy_gravinv.output import REPRODUCE_FILES, save_metrics_json

    from ._common import check_device, hold_output

    check_device(args.device)
    out = hold_output(args, REPRODUCE_FILES)
    cases = ["dipping_block", "smooth_grf"] if args.case == "all" else [args.case]
    report = {"quick": bool(args.quick), "anchors": ANCHORS, "targets": TARGETS}
    for case in cases:
        if case == "dipping_block":
            rows = run_dipping_block(out, args.quick, args.device, not args.no_figures, args.seed, args.threads)
        else:
            rows = run_smooth_grf(out, args.quick, args.device, not args.no_figures, args.seed, args.threads,
                                  args.grf_seed)
        report[case] = rows
        print_table(case, rows)
    path = save_metrics_json(out / "metrics.json", report)
    print(f"\nwrote {path}")
    return 0
