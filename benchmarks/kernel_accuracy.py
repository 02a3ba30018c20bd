"""Relative error of the prism g_z kernel in float64 and float32 vs a 50-digit reference.

Usage::

    .venv/bin/python benchmarks/kernel_accuracy.py

A unit cube (1 m) of 1 kg/m³; stations along a diagonal direction at distances of 1 to 1000
cell sizes. The reference evaluates the same closed form with mpmath at 50 digits. The
operator shifts coordinates to a local origin before any float32 cast (as here).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import torch

from gempy_gravinv import prism_gz
from gempy_gravinv._kernels import CORNER_SIGNS

mp.mp.dps = 50
G = mp.mpf("6.67430e-11")


def reference(st, b):
    tot = mp.mpf(0)
    for k, s in enumerate(CORNER_SIGNS):
        x = mp.mpf(b[1] if k & 1 else b[0]) - mp.mpf(st[0])
        y = mp.mpf(b[3] if k & 2 else b[2]) - mp.mpf(st[1])
        z = mp.mpf(b[5] if k & 4 else b[4]) - mp.mpf(st[2])
        r = mp.sqrt(x * x + y * y + z * z)
        tot += s * (x * mp.log(y + r) + y * mp.log(x + r) - z * mp.atan(x * y / (z * r)))
    return float(G * tot * mp.mpf(100000))


def main():
    b = [-0.5, 0.5, -0.5, 0.5, -1.0, 0.0]
    direction = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])
    print(f"{'distance (cells)':>17s} {'float64 rel. err':>17s} {'float32 rel. err':>17s}")
    for d in (1, 3, 10, 30, 100, 300, 1000):
        st = direction * d
        ref = reference(st, b)
        out = []
        for dt in (torch.float64, torch.float32):
            g = prism_gz(torch.tensor(np.array([st]), dtype=dt), torch.tensor([b], dtype=dt),
                         torch.tensor([1.0], dtype=dt))
            out.append(abs(g.double().item() - ref) / abs(ref))
        print(f"{d:17d} {out[0]:17.2e} {out[1]:17.2e}")


if __name__ == "__main__":
    main()
