"""Policies a worker process keeps from one batch build to the next.

The privacy filter keeps what it learns on the policy object: the consent
engine's decision per signal key, the route per key, pseudonyms, truncated
addresses and reduced user agents per value, and the compiled row filter's
fingerprints of signal keys. All of it follows from the policy's values alone
(``PartnerPolicy`` compares by value; its parsed GVL, which takes no part in
that, is compared here by identity), so a later build whose configuration has
not changed can use the same object and find that work done. An hourly feed
meets mostly the same consent strings, listeners and user agents hour after
hour, and a streaming feed builds several micro-batches a second. Any change
to the partner's or the feed's configuration (consent and activity rules,
pseudonym keys, allowlist, minimisation, GVL) gives a policy that is not equal,
which starts afresh.

A kept policy is lent to one build at a time: it leaves the cache while a build
uses it, so two builds of one process never share one (the compiled row filter
holds per-call state and is not for two threads at once). A build that fails
does not give its policy back. What a policy learns from a million events takes
tens of megabytes, so at most ``DELIVERY_KEPT_POLICIES`` are kept, the least
recently used dropped first, and none longer than
``DELIVERY_KEPT_POLICY_IDLE_SECONDS`` after the build that last used it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from gateway.delivery.policies import policy_for
from gateway.privacy.policy import PartnerPolicy
from partners.models import Feed, Partner

# Each kept policy (as its own key) and when its last build gave it back (time.monotonic).
_kept: OrderedDict[PartnerPolicy, tuple[PartnerPolicy, float]] = OrderedDict()
_lock = threading.Lock()


@contextmanager
def kept_policy(*, partner: Partner, feed: Feed) -> Iterator[PartnerPolicy]:
    """``policy_for(partner, feed)`` for one build: the kept object when one is equal to it.

    The policy is kept for the next build once the block ends without an error.
    """
    fresh = policy_for(partner=partner, feed=feed)
    policy = _borrowed(fresh)
    yield policy
    _given_back(policy)


def kept_policies_forget() -> None:
    """Drop every kept policy (tests: no test may find what another's builds learnt)."""
    with _lock:
        _kept.clear()


def kept_policy_count() -> int:
    """How many policies this process keeps now."""
    with _lock:
        return len(_kept)


def _borrowed(fresh: PartnerPolicy) -> PartnerPolicy:
    with _lock:
        _expire(time.monotonic())
        kept = _kept.pop(fresh, None)
    if kept is not None and kept[0].gvl is fresh.gvl:
        return kept[0]
    return fresh


def _given_back(policy: PartnerPolicy) -> None:
    limit = settings.DELIVERY_KEPT_POLICIES
    if limit <= 0:
        return
    with _lock:
        # An equal policy given back meanwhile (another build's) makes way: one is enough.
        _kept.pop(policy, None)
        _kept[policy] = (policy, time.monotonic())
        while len(_kept) > limit:
            _kept.popitem(last=False)


def _expire(now: float) -> None:
    """Drop the policies no build has used for longer than the idle limit (lock held)."""
    idle = settings.DELIVERY_KEPT_POLICY_IDLE_SECONDS
    for key, (_policy, given_back_at) in list(_kept.items()):
        if now - given_back_at > idle:
            del _kept[key]
