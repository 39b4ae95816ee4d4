"""Test code run in a child process on a fresh SQLite database: the demo's.

The test process itself runs on PostgreSQL; what must also hold on the
demo's database runs in a child, which migrates the new database itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def run_on_fresh_sqlite(args: Sequence[str], *, database: Path) -> subprocess.CompletedProcess[str]:
    """``python <args>`` from the project root, on the SQLite file ``database`` (new).

    The child gets this process's secrets, and ``database``'s folder as its var folder.
    """
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "GATEWAY_VAR_DIR": str(database.parent),
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
