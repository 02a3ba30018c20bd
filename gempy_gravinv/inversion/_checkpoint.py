"""Checkpoints of INR training: exact resume (weights, optimiser, RNG streams, history).

A checkpoint is a ``torch.save`` file per member, written atomically (a temporary file,
then a rename). It holds only tensors, numbers, strings, lists, tuples and dicts, and is
read back with ``torch.load(..., weights_only=True)``: a file that holds any other
object (an old-format checkpoint, or a crafted pickle) is refused without running it.
It records the settings that change the result (:func:`resume_key`) and a hash of the
data (:func:`data_key`: stations, data, std, mesh bounds and, for a survey with other
components than g_z, the components), and refuses to resume under other settings or data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from .._distributed import barrier, is_main
from ._config import INRConfig

logger = logging.getLogger(__name__)

#: version of the checkpoint layout (1: pickled NumPy/Python objects, no longer read)
FORMAT_VERSION = 2

_FRESH = "delete it (or its checkpoint folder) or run without resume (CLI: without --resume) to start fresh"


def rng_state() -> dict:
    """The global torch, NumPy and Python random states, as tensors, numbers and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, state, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "python": {"version": int(version), "state": [int(v) for v in state],
                       "gauss": None if gauss is None else float(gauss)}}


def set_rng_state(s: dict) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(s["torch"].cpu())
    n = s["numpy"]
    np.random.set_state((n["kind"], n["keys"].cpu().numpy().astype(np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = s["python"]
    random.setstate((int(p["version"]), tuple(int(v) for v in p["state"]), p["gauss"]))


def resume_key(cfg: INRConfig) -> dict:
    """The settings a checkpoint must match to be resumed (those that change the result)."""
    d = cfg.to_dict()
    for k in ("progress", "checkpoint_every", "device", "store", "num_threads"):
        d.pop(k, None)
    return d


def _saved_settings(saved):
    """A checkpoint's settings, a setting it lacks (added to :class:`INRConfig` after it was written) at its default.

    A setting added later defaults to the behaviour before it, so such a checkpoint resumes
    where the run uses that default, and is refused where it does not.
    """
    if not isinstance(saved, dict):
        return saved
    return {**resume_key(INRConfig()), **saved}


def data_key(survey, mesh) -> str:
    """SHA-256 of what a checkpoint must have been trained on.

    Parameters
    ----------
    survey : Survey
        Its station locations (m), observed data and std (g_z: mGal) and, unless every
        datum is g_z, the component of every datum.
    mesh : PrismMesh
        Its cell bounds (m).

    Returns
    -------
    str
        Hex digest; equal for bit-identical inputs. A g_z survey's key is the same as
        before surveys carried components (its checkpoints still resume); any other
        survey's also hashes the components, so the same numbers as ``gz`` and as
        ``gzz`` data give different keys.
    """
    h = hashlib.sha256()
    for name, a in (("locations", survey.locations), ("gz", survey.gz), ("std", survey.std),
                    ("bounds", mesh.bounds)):
        arr = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
        h.update(f"{name}{arr.shape}".encode())
        h.update(arr.tobytes())
    if not getattr(survey, "is_gz_only", True):
        comps = [str(c) for c in survey.components]
        h.update(f"components({len(comps)},)".encode())
        h.update(",".join(comps).encode())
    return h.hexdigest()


def read_checkpoint(ckpt: Path, device) -> dict:
    """Load ``ckpt`` with ``weights_only=True``; a clear ``ValueError`` if it cannot be used.

    Raises
    ------
    ValueError
        The file is empty, truncated or not a checkpoint; it holds objects other than
        tensors and plain values (refused unread: an old-format checkpoint or a crafted
        file); or it is of another format version. The message names the file and says
        how to start fresh.
    """
    bad = _bad_record(ckpt)
    if bad is not None:
        raise ValueError(f"checkpoint {ckpt} is damaged (its record {bad} fails its checksum); {_FRESH}")
    try:
        ck = torch.load(ckpt, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" in str(exc).lower():  # an object to build by calling code: never run
            raise ValueError(f"checkpoint {ckpt} holds objects other than tensors and plain values "
                             f"(an old-format checkpoint, or not written by gempy_gravinv); it was not "
                             f"loaded: {_FRESH}") from None
        raise ValueError(f"checkpoint {ckpt} is damaged or not a checkpoint ({_short(exc)}); {_FRESH}") from None
    except IsADirectoryError:
        raise ValueError(f"checkpoint {ckpt} is a folder, not a checkpoint file; {_FRESH}") from None
    except PermissionError as exc:
        raise ValueError(f"cannot read checkpoint {ckpt}: {exc.strerror}") from None
    except Exception as exc:  # truncated zip, empty file, random bytes: torch raises several kinds
        raise ValueError(f"checkpoint {ckpt} is damaged or not a checkpoint ({_short(exc)}); {_FRESH}") from None
    if not isinstance(ck, dict) or "config_key" not in ck:
        raise ValueError(f"{ckpt} is not a gempy_gravinv checkpoint; {_FRESH}")
    if ck.get("version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {ckpt} is of format version {ck.get('version')!r}, this version reads "
                         f"{FORMAT_VERSION}; {_FRESH}")
    return ck


def _bad_record(ckpt: Path) -> str | None:
    """The first record of a zip-format checkpoint whose CRC-32 fails (bytes changed on disk), else None.

    torch's loader does not check the records' checksums; a file that is not a readable
    zip archive is left to it (it names that damage itself).
    """
    import zipfile

    try:
        with zipfile.ZipFile(ckpt) as z:
            return z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    except Exception as exc:  # a record that cannot even be read back (e.g. a broken header)
        return f"? ({_short(exc)})"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def load_checkpoint(ckpt: Path, cfg: INRConfig, key: str, device, fld: torch.nn.Module) -> dict:
    """Read ``ckpt``, check its settings and data, load its field into ``fld``.

    Parameters
    ----------
    ckpt : Path
        The member's checkpoint file.
    cfg : INRConfig
        The settings of this run (compared with :func:`resume_key`).
    key : str
        :func:`data_key` of this run's data.
    device : torch.device
        Where to load tensors.
    fld : torch.nn.Module
        Receives the saved weights.

    Returns
    -------
    dict
        The checkpoint's entries.

    Raises
    ------
    ValueError
        Damaged or refused file (:func:`read_checkpoint`), other settings, other data.
    """
    ck = read_checkpoint(ckpt, device)
    saved, now = _saved_settings(ck.get("config_key")), resume_key(cfg)
    if saved != now:
        raise ValueError(f"checkpoint {ckpt} was written with other settings ({_changed(saved, now)}); {_FRESH}")
    if ck.get("data_key") != key:
        raise ValueError(f"checkpoint {ckpt} was written for other data (stations, components, data, std "
                         f"or mesh); {_FRESH}")
    try:
        fld.load_state_dict(ck["field"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"checkpoint {ckpt} does not fit this density backend ({_short(exc)}); {_FRESH}") from None
    logger.info("resuming from %s (step %s)", ckpt, ck.get("step", 0))
    return ck


def _changed(saved, now: dict, most: int = 4) -> str:
    """The settings that differ, ``name: saved -> now``, at most ``most`` of them."""
    if not isinstance(saved, dict):
        return "its settings are unreadable"
    keys = sorted(k for k in set(saved) | set(now) if saved.get(k, "<unset>") != now.get(k, "<unset>"))
    parts = [f"{k}: {saved.get(k, '<unset>')!r} -> {now.get(k, '<unset>')!r}" for k in keys[:most]]
    return ", ".join(parts) + (f", and {len(keys) - most} more" if len(keys) > most else "")


def plain_values(v):
    """NumPy arrays and scalars as tensors and Python numbers (what a checkpoint may hold)."""
    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(v))
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: plain_values(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_values(x) for x in v]
    return v


def save_checkpoint(ckpt: Path, payload: dict) -> None:
    """Write ``payload`` (tensors and plain values only) to ``ckpt`` atomically.

    Under several ranks a collective: rank 0 alone writes (the ranks hold the same
    state), then every rank waits for the file, so any rank can resume from it.
    """
    if is_main():
        tmp = ckpt.with_suffix(ckpt.suffix + ".tmp")
        torch.save({"version": FORMAT_VERSION, **payload}, tmp)
        os.replace(tmp, ckpt)
    barrier()


def checkpoint_path(checkpoint, member: int, n_members: int, tag: str = "") -> Path | None:
    """The checkpoint file of ``member``; None without ``checkpoint``.

    In a folder: ``inr_member{k}.pt``; otherwise the file itself
    (``{stem}.member{k}{suffix}`` with several members). A ``tag`` (a second run of
    the same inversion, e.g. ``"fallback"``) is added to the name: ``inr_member{k}.{tag}.pt``,
    ``{stem}.{tag}{suffix}``.
    """
    if checkpoint is None:
        return None
    p = Path(checkpoint)
    t = f".{tag}" if tag else ""
    if p.suffix == "" or p.is_dir():
        if p.exists() and not p.is_dir():
            raise ValueError(f"checkpoint {p} is a file, but a name without a suffix is used as a folder; "
                             "give a file name with a suffix (e.g. run.pt) or another folder")
        p.mkdir(parents=True, exist_ok=True)
        return p / f"inr_member{member}{t}.pt"
    p.parent.mkdir(parents=True, exist_ok=True)
    m = "" if n_members == 1 else f".member{member}"
    return p if not (m or t) else p.with_name(f"{p.stem}{m}{t}{p.suffix}")
