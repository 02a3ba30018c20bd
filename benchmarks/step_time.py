"""Time of one training step of ``auto()`` on suite cases (ms, best of 3 x 100 steps, one torch thread).

Usage::

    python benchmarks/step_time.py --cases two_bodies,deep_body,dike

Builds each case (noise seed 0), sets up the problem as ``invert_inr`` does, takes 30
warm-up steps and reports the fastest of three 100-step means. Run it at two commits to
compare their per-step cost on the same machine; the suite (``benchmarks/suite.py``)
gives the ratios against SimPEG.
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="two_bodies,deep_body,dike")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    import gempy_gravinv as gg
    from gempy_gravinv._mesh import as_prism_mesh
    from gempy_gravinv.cases import suite
    from gempy_gravinv.inversion._problem import Problem
    from gempy_gravinv.inversion._trainer import MemberTrainer

    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        case = suite.build_case(name, noise_seed=0)
        cfg = gg.INRConfig.auto(bounds=case.bounds, progress=False)
        prob = Problem(case.survey, as_prism_mesh(case.mesh), cfg)
        if prob.cfg.solver != "adam":
            print(f"{name}: the smooth prior is solved in closed form (no training steps)")
            continue
        trainer = MemberTrainer(prob, 0, None)
        for _ in range(30):
            trainer.train_step()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(100):
                trainer.train_step()
            best = min(best, (time.perf_counter() - t0) / 100)
        print(f"{name}: {1e3 * best:.2f} ms per step ({case.survey.n_data} stations x {case.mesh.n_cells} cells)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
