from __future__ import annotations

import subprocess
import sys


def test_the_privacy_package_does_not_import_django() -> None:
    # Pure functions only: cheap to test, to benchmark and to run in any worker.
    code = (
        "import sys, gateway.privacy.filter, gateway.privacy.tcf, gateway.privacy.usprivacy; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
