"""torch's MKL is put in its reproducible mode at import, so a seed repeats from process to process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.backends.mkl.is_available() or not sys.platform.startswith("linux"),
                                reason="torch without MKL, or not Linux (the probe reads libtorch_cpu.so)")

_PROBE = """
import ctypes, os, sys, torch
if sys.argv[1] == "after":  # MKL runs before the package is imported
    a = torch.randn(64, 64, dtype=torch.float64); (a @ a).sum()
import gempy_gravinv._runtime as R
lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
print(R.mkl_reproducibility(), "|", lib.mkl_serv_cbwr_get(ctypes.c_int(1)))
"""


def _probe(order: str, **env) -> tuple[str, int]:
    full = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE, order], env=full, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    said, branch = out.split(" | ")
    return said, int(branch)


def test_import_sets_mkl_to_its_reproducible_mode():
    # MKL_CBWR_BRANCH queried: 2 is MKL_CBWR_AUTO, 1 MKL_CBWR_BRANCH_OFF (MKL's default)
    assert _probe("before") == ("AUTO,STRICT", 2)


def test_a_user_setting_is_kept_and_a_late_import_says_it_could_not_set_the_mode():
    said, branch = _probe("before", MKL_CBWR="COMPATIBLE")
    assert said == "MKL_CBWR=COMPATIBLE (set by the user)" and branch == 3  # MKL_CBWR_COMPATIBLE
    said, branch = _probe("after")
    assert said.startswith("not set: MKL already ran") and branch == 1
