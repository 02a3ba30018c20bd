"""Checkpoints of INR training: exact resume (weights, optimiser, RNG streams, history).

A checkpoint is a ``torch.save`` file per member, written atomically (a temporary file,
then a rename); it records the settings that change the result (:func:`resume_key`)
and refuses to resume under others.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from ._config import INRConfig


def rng_state() -> dict:
    """The global torch, NumPy and Python random states."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(s: dict) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def resume_key(cfg: INRConfig) -> dict:
    """The settings a checkpoint must match to be resumed (those that change the result)."""
    d = cfg.to_dict()
    for k in ("progress", "checkpoint_every", "device", "store", "num_threads"):
        d.pop(k, None)
    return d


def load_checkpoint(ckpt: Path, cfg: INRConfig, device, fld: torch.nn.Module) -> dict:
    """Read ``ckpt``, check it was written with ``cfg``'s settings, load its field into ``fld``."""
    ck = torch.load(ckpt, map_location=device, weights_only=False)
    if ck.get("config_key") != resume_key(cfg):
        raise ValueError(f"checkpoint {ckpt} was written with other settings; "
                         "delete it or pass resume=False")
    fld.load_state_dict(ck["field"])
    return ck


def save_checkpoint(ckpt: Path, payload: dict) -> None:
    """Write ``payload`` to ``ckpt`` atomically (a temporary file, then a rename)."""
    tmp = ckpt.with_suffix(ckpt.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, ckpt)



def checkpoint_path(checkpoint, member: int, n_members: int) -> Path | None:
    """The checkpoint file of ``member``; None without ``checkpoint``.

    In a folder: ``inr_member{k}.pt``; otherwise the file itself
    (``{stem}.member{k}{suffix}`` with several members).
    """
    if checkpoint is None:
        return None
    p = Path(checkpoint)
    if p.suffix == "" or p.is_dir():
        p.mkdir(parents=True, exist_ok=True)
        return p / f"inr_member{member}.pt"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p if n_members == 1 else p.with_name(f"{p.stem}.member{member}{p.suffix}")
