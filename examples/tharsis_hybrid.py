"""Tharsis: geology-informed INR (GemPy intrusion model + INR residual) from the command line.

1. Prepares the IGME Tharsis Bouguer stations with :func:`gempy_gravinv.cases.tharsis.tharsis_case`
   (local coordinates, planar regional removed, std = 0.5 mGal + 2% |residual|) and its
   padded tensor mesh, and writes them as a station CSV and a UBC-GIF mesh file.
2. Runs ``gempy-gravinv invert STATIONS --mesh MESH --backend hybrid --geomodel
   tharsis-intrusion`` (the Bayesian case's one-surface intrusion model,
   :func:`gempy_gravinv.cases.bayes.tharsis_intrusion_model`: host rock over
   plutonite, dips 10°, unit contrasts from the prior means (host rock +230, plutonite -370 kg/m³), whose
   g_z averages ~0 over the stations like the detrended data; the contrasts are learned
   jointly with the residual), writing model files, metrics, sections, data maps and
   off-screen 3D views into ``OUT``.

    python examples/tharsis_hybrid.py --out results/tharsis_hybrid [--max-steps 1500] [--backend hybrid]

Data © CN Instituto Geológico y Minero de España (IGME) (see gempy_gravinv/data/tharsis/README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/tharsis_hybrid")
    ap.add_argument("--max-steps", type=int, default=1500)
    ap.add_argument("--backend", default="hybrid", choices=["inr", "geology", "hybrid"])
    ap.add_argument("--unit-densities", default=None,
                    help="plutonite,host rock contrasts in kg/m³, in GemPy's unit order (the basement, here the "
                         "host rock, last), e.g. --unit-densities=-370,230 (default: the prior means)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `invert` options")
    args = ap.parse_args(argv)

    from gempy_gravinv import io as gio
    from gempy_gravinv.cases.tharsis import tharsis_case
    from gempy_gravinv.cli import main as cli_main

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    case = tharsis_case()
    stations = gio.write_csv(out / "tharsis_stations.csv", case.survey)
    mesh_file = out / "tharsis_mesh.msh"
    case.mesh.source.write_UBC(mesh_file.name, directory=str(out))
    (out / "notes.txt").write_text("\n".join(case.notes()) + "\n")
    cmd = ["invert", str(stations), "--mesh", str(mesh_file), "-o", str(out / args.backend),
           "--backend", args.backend, "--max-steps", str(args.max_steps), "--no-progress"]
    if args.backend != "inr":
        cmd += ["--geomodel", "tharsis-intrusion", "--learn-densities"]
        if args.unit_densities:
            cmd += ["--unit-densities", args.unit_densities]
    cmd += list(args.extra)
    print("gempy-gravinv " + " ".join(cmd), flush=True)
    return cli_main(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
