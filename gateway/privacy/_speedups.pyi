# The compiled speedups (_speedups.c), as the Python code sees them; see speedups.py.
from collections.abc import Callable, Mapping
from typing import Any

def signal_key(event: Mapping[str, Any], /) -> tuple[Any, ...]: ...
def set_signal_key_fallback(
    function: Callable[[Mapping[str, Any]], tuple[Any, ...]], /
) -> None: ...
def limits_ad_tracking(event: Mapping[str, Any], /) -> bool: ...
def sha256_accelerate(accelerate: bool, /) -> bool: ...

class Selector:
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def __call__(self, value: Any, event: Mapping[str, Any], policy: Any, /) -> Any: ...

class Minimiser:
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def __call__(self, event: Mapping[str, Any], /) -> Any: ...

class KeyedHash:
    def __init__(self, key: bytes, *, lenient: bool = False) -> None: ...
    def __call__(self, value: Any, /) -> Any: ...

class IpTruncator:
    def __init__(
        self,
        ipv4_bits: int,
        ipv6_bits: int,
        embedding: tuple[tuple[int, int, int, int], ...],
        fallback: Callable[[object], str | None],
    ) -> None: ...
    def __call__(self, value: object, /) -> str | None: ...

class CoordinateRounder:
    def __init__(self, decimals: int, limit: int) -> None: ...
    def __call__(self, value: object, /) -> float | None: ...

class RowFilter:
    def __init__(
        self,
        *,
        policy: Any,
        routes_name: str,
        signal_key: Callable[[Mapping[str, Any]], tuple[Any, ...]],
        slow: Callable[[Any, Any], tuple[Any, dict[str, Any] | None]],
        loads: Callable[[Any], Any],
        dumps: Callable[..., bytes],
        option: int,
        unspecified: str,
        bytes_path: bool = False,
    ) -> None: ...
    @property
    def bytes_rows(self) -> int: ...
    def __call__(
        self,
        rows: list[tuple[Any, Any]],
        start: int,
        lines: list[bytes],
        dropped: dict[str, int],
        audits: dict[tuple[str, ...], int],
        tags: dict[Any, int],
        records_left: int,
        bytes_left: int,
        /,
    ) -> tuple[int, int, int]: ...

class TextCache:
    def __init__(self, size: int) -> None: ...
    def __len__(self) -> int: ...
