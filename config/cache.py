"""The shared store's Redis cache backend: Django's, keeping one client per connection pool.

Django's ``RedisCacheClient`` builds a new ``redis.Redis`` for every cache
call, and redis-py fills a table of ~170 response callbacks in each one's
constructor: about 0.15 ms, more than the round trip to a local Redis. A send
makes a dozen such calls (limits, circuit breaker, slots), so the client is
built once per pool instead. Django gives every thread its own cache object,
hence its own pools and clients; nothing here is shared between threads.

Two operations the cache API lacks are added, each one atomic step on Redis
(a Lua script): ``incr_from`` (a counter made with an expiry when missing:
Django's ``incr`` is two round trips and fails on a missing key) and
``delete_if`` (compare-and-delete: a lease is freed only by its holder).
``gateway.shared_store`` uses them, with the cache API's steps for the
demo's file cache.
"""

from __future__ import annotations

from typing import Any

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _ClientPerPool(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> redis.Redis:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # Django's own
        client = self._clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


# KEYS[1] += ARGV[1]; a key made by it (no expiry yet) expires in ARGV[2] seconds.
_INCR_FROM = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return value
"""
# KEYS[1] deleted if it holds ARGV[1]; 1 when deleted.
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SharedRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ClientPerPool

    def incr_from(self, key: str, delta: int, *, timeout: int) -> int:
        """``key`` plus ``delta`` (from 0 when missing, then expiring in ``timeout`` s)."""
        return int(self._script(_INCR_FROM, key, delta, timeout))

    def delete_if(self, key: str, value: Any) -> bool:
        """Delete ``key`` if it holds ``value``; whether it did."""
        serialised = self._client()._serializer.dumps(value)  # as Django stores it
        return bool(self._script(_DELETE_IF, key, serialised))

    def _client(self) -> Any:
        return self._cache  # type: ignore[attr-defined]  # Django's own (a cached property)

    def _script(self, source: str, key: str, *args: Any) -> Any:
        full_key = self.make_and_validate_key(key)
        client = self._client().get_client(full_key, write=True)
        # EVALSHA once the server knows the script (redis-py loads it on first use).
        return client.register_script(source)(keys=[full_key], args=list(args))
