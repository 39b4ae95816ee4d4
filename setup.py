"""What pyproject.toml cannot say: the optional C speedups of the privacy filter.

``pip install -e .`` (``make venv``) compiles them; without a C compiler the
build goes on without them and the filter runs its Python code alone.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gateway.privacy._speedups",
            sources=["gateway/privacy/_speedups.c"],
            depends=["gateway/privacy/_sha256.h", "gateway/privacy/_json_scan.h"],
            # A function the headers do not declare is a mistake here, never an int.
            # No fused multiply-adds the source does not ask for: CoordinateRounder's
            # exact rounding counts on each product and sum rounding on its own.
            extra_compile_args=["-Werror=implicit-function-declaration", "-ffp-contract=off"],
            libraries=["m"],
            optional=True,
        )
    ]
)
