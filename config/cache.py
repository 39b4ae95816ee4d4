"""The shared store's Redis cache backend: Django's, keeping one client per connection pool.

Django's ``RedisCacheClient`` builds a new ``redis.Redis`` for every cache
call, and redis-py fills a table of ~170 response callbacks in each one's
constructor: about 0.15 ms, more than the round trip to a local Redis. A send
makes a dozen such calls (limits, circuit breaker, slots), so the client is
built once per pool instead. Django gives every thread its own cache object,
hence its own pools and clients; nothing here is shared between threads.

Three operations the cache API lacks are added, each one atomic step on Redis
(a Lua script): ``incr_from`` (a counter made with an expiry when missing:
Django's ``incr`` is two round trips and fails on a missing key),
``delete_if`` (compare-and-delete: a lease is freed only by its holder) and
``read_and_lease`` (``get_many`` and the first ``add`` that succeeds among
several keys, at once). ``gateway.delivery.shared_store`` uses them, with the
cache API's steps for the demo's file cache. The scripts touch several keys
at once, so they need one Redis server (not a cluster), as the gateway has.
"""

from __future__ import annotations

from collections.abc import Sequence
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
# The values of the first ARGV[1] keys, then the first of the other keys that
# SET NX could take (holding ARGV[2], expiring in ARGV[3] s). Returns the
# number of the key taken among the others (0: none), then the values.
_READ_AND_LEASE = """
local reads = tonumber(ARGV[1])
local result = {0}
for i = 1, reads do result[i + 1] = redis.call('GET', KEYS[i]) end
for i = reads + 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2], 'NX', 'EX', ARGV[3]) then
    result[1] = i - reads
    break
  end
end
return result
"""


class SharedRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ClientPerPool

    def incr_from(self, key: str, delta: int, *, timeout: int) -> int:
        """``key`` plus ``delta`` (from 0 when missing, then expiring in ``timeout`` s)."""
        return int(self._script(_INCR_FROM, [key], delta, timeout))

    def delete_if(self, key: str, value: Any) -> bool:
        """Delete ``key`` if it holds ``value``; whether it did."""
        return bool(self._script(_DELETE_IF, [key], self._serializer().dumps(value)))

    def read_and_lease(
        self, read_keys: Sequence[str], lease_keys: Sequence[str], value: Any, *, timeout: int
    ) -> tuple[dict[str, Any], str | None]:
        """``get_many(read_keys)``, and the first of ``lease_keys`` that ``add`` could take.

        ``value`` is what the key taken holds, for ``timeout`` (> 0) seconds.
        """
        serializer = self._serializer()
        reply = self._script(
            _READ_AND_LEASE,
            [*read_keys, *lease_keys],
            len(read_keys),
            serializer.dumps(value),
            timeout,
        )
        taken = int(reply[0])
        values = {
            key: serializer.loads(raw)
            for key, raw in zip(read_keys, reply[1:], strict=True)
            if raw is not None
        }
        return values, lease_keys[taken - 1] if taken else None

    def _client(self) -> Any:
        return self._cache  # type: ignore[attr-defined]  # Django's own (a cached property)

    def _serializer(self) -> Any:
        """How Django stores values (integers as they are, anything else pickled)."""
        return self._client()._serializer

    def _script(self, source: str, keys: Sequence[str], *args: Any) -> Any:
        full_keys = [self.make_and_validate_key(key) for key in keys]
        client = self._client().get_client(full_keys[0], write=True)
        # EVALSHA once the server knows the script (redis-py loads it on first use).
        return client.register_script(source)(keys=full_keys, args=list(args))
