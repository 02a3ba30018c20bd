"""Settings files (JSON or TOML) read into plain dicts."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .._validation import check_choice
from ._common import PathLike

logger = logging.getLogger(__name__)

_SUFFIXES = (".json", ".toml")


def read_config(path: PathLike, *, section: str | None = None) -> dict:
    """Read a JSON or TOML settings file into a dict.

    Parameters
    ----------
    path : str or path-like
        A ``.json`` or ``.toml`` file (the suffix decides, case-insensitive).
    section : str, optional
        Return this table of the file when the file has it (e.g. ``"inr"`` for
        ``[inr]`` in a TOML file holding several sections); the whole file otherwise.

    Returns
    -------
    dict
        The settings as written in the file (values keep the units the reader of each
        setting documents; nothing is converted here).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Another suffix, a syntax error (the message names the file and the position),
        or a file whose top level is not a table / object.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    suffix = p.suffix.lower()
    check_choice(suffix, _SUFFIXES, name=f"the suffix of config file {p.name}")
    text = p.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config {p} is not valid JSON: {exc}") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config {p} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config {p} must hold a table of settings, got {type(data).__name__}")
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    logger.debug("read config %s (%d top-level key(s))", p, len(data))
    return data
