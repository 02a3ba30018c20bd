"""The process state the Bayesian runners need, switched on for their own work only.

GemPy's PyTorch backend (``gp.compute_model(..., backend=PYTORCH)`` run by the user
before a Bayesian run) leaves gradients switched off process-wide and replaces
functions of the ``torch`` module with its own wrappers. NUTS, SVI and the predictive
runs need autograd and the real torch functions, so each runner works inside
:func:`sampling_state`, which switches gradients on, puts back torch's own functions,
and on exit (also on error) leaves the process exactly as it found it: the grad mode and
any replaced ``torch`` attributes are restored to what they were before the block.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

__all__ = ["sampling_state"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def sampling_state() -> Iterator[None]:
    """Gradients on and torch's own functions in place for the block; restored afterwards.

    Yields
    ------
    None

    Notes
    -----
    Re-entrant. Logs (INFO) when it had to switch gradients on or repair ``torch``
    attributes, so a user sees why their process state differed inside the run.
    """
    from ..geomodel._guard import pristine_torch_attributes, restore_torch

    grad_mode = torch.is_grad_enabled()
    pristine = pristine_torch_attributes()
    before = dict(vars(torch))
    fixed = restore_torch()
    if fixed:
        log.info("torch functions replaced by GemPy's backend (%s...) restored for the Bayesian run",
                 ", ".join(fixed[:5]))
    if not grad_mode:
        log.info("gradients were switched off process-wide (GemPy's PyTorch backend leaves them "
                 "off); switched on for the Bayesian run and off again afterwards")
    try:
        with torch.enable_grad():
            yield
    finally:
        now = vars(torch)
        for name in fixed:  # put back what the caller had, as found
            if name in before:
                setattr(torch, name, before[name])
            elif name in now and name in pristine:
                delattr(torch, name)
        torch.set_grad_enabled(grad_mode)
