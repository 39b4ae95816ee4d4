"""The optional C speedups of the privacy filter (``_speedups.c``), when they are usable.

``pip install -e .`` (``make venv``) compiles them where a C compiler is found;
without one the install goes on and the filter runs its Python code alone. They
compute exactly what the Python code computes (``tests/privacy/test_fast_paths.py``
compares both with a plain reference), only without the interpreter.

``GATEWAY_PRIVACY_SPEEDUPS=0`` in the environment leaves them out, to compare
or to rule them out while investigating; ``1`` (the default) uses them when built.
"""

from __future__ import annotations

import os
from types import ModuleType

ENVIRONMENT_VARIABLE = "GATEWAY_PRIVACY_SPEEDUPS"


def speedups_load() -> ModuleType | None:
    """The compiled module, or None when it is not built or is switched off."""
    setting = os.environ.get(ENVIRONMENT_VARIABLE, "1")
    if setting not in ("0", "1"):
        raise ValueError(f"{ENVIRONMENT_VARIABLE} must be 0 or 1, not {setting!r}")
    if setting == "0":
        return None
    try:
        from gateway.privacy import _speedups
    except ImportError:  # not compiled: the Python code alone
        return None
    return _speedups
