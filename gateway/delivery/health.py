"""Feed and endpoint health around each send: may it go now, and what its outcome means.

Before an attempt, ``send_permit`` asks, in order: is the feed paused (the
partner asked us to slow down), is its endpoint's circuit open, is one of the
feed's concurrency slots free, are there request and event tokens left. The
first three answers come from one round trip to the shared store, which also
takes the slot; a send asks on a send thread while PostgreSQL claims the
batch (``send_permit_ask``), unless its feed was refused lately. Any "no" is
a ``Deferral``: the send goes back to the queue for a while, which is not an
attempt and costs no retry budget. A "yes" is a ``Permit`` the send holds
until it is done.

After an attempt, ``outcome_note`` tells the breaker, slows the feed down
after a 429/502/503/504 and gives the permit back (all in the shared store,
on a send thread while PostgreSQL records the outcome); then
``outcome_consequences`` disables the feed when its endpoint is gone (410)
or it has failed continuously for ``auto_disable_after_hours``, with a
``FeedNotice`` for the admin and an alert.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min

from gateway.delivery import circuit, limits, retry
from gateway.delivery.alerts import Alert, alert_on_commit
from gateway.delivery.models import Batch, DeliveryAttempt, FeedNotice
from gateway.delivery.send_threads import send_executor
from gateway.delivery.throttling import (
    is_endpoint_failure,
    reached_endpoint,
    slowed_limit,
    slowed_rate,
)
from partners.models import Feed

if TYPE_CHECKING:
    from gateway.delivery.sending import AttemptResult

logger = logging.getLogger(__name__)

# Outlives the send task's hard time limit, so a killed worker's slot or probe
# is freed only once Celery has surely stopped the send.
_LEASE_MARGIN_SECONDS = 30
FAILED_OUTCOMES = (
    DeliveryAttempt.Outcome.TRANSIENT_FAILURE,
    DeliveryAttempt.Outcome.PERMANENT_FAILURE,
)


@dataclass(frozen=True)
class Deferral:
    """Not now: try again in ``wait_seconds``; ``reason`` goes to the batch's last error."""

    wait_seconds: float
    reason: str


@dataclass
class Permit:
    """What a send holds while it runs: a concurrency slot, and the circuit's probe if it is one."""

    endpoint_url: str = ""
    slot: limits.Slot | None = None
    probe_token: str | None = None

    def release(self) -> None:
        """Free the slot, and the probe if no outcome was recorded for it. Idempotent."""
        if self.slot is not None:
            limits.slot_release(self.slot)
            self.slot = None
        if self.probe_token is not None:
            circuit.circuit_probe_release(endpoint_url=self.endpoint_url, token=self.probe_token)
            self.probe_token = None


def lease_seconds() -> int:
    return settings.DELIVERY_SEND_TIME_LIMIT + _LEASE_MARGIN_SECONDS


def breaker_endpoint(feed: Feed) -> str:
    """The URL whose breaker guards the feed's sends; none for file drops."""
    return "" if feed.mode == Feed.Mode.FILE else feed.endpoint_url


def send_permit(
    *, batch: Batch, now: float, rand: Callable[[], float] = random.random
) -> Permit | Deferral:
    """A permit to attempt ``batch`` now, or how long to wait (never an attempt)."""
    feed = batch.feed
    permit = Permit(endpoint_url=breaker_endpoint(feed))
    # The feed's slow-down and its endpoint's breaker are read, and a slot
    # among the feed's max_concurrency taken, in one round trip: most sends
    # may go, and one that may not gives its slot straight back.
    slowdown_key = limits.slowdown_key(feed.pk)
    open_until_key = circuit.open_until_key(permit.endpoint_url) if permit.endpoint_url else ""
    permit.slot, stored = limits.slot_acquire_reading(
        feed_id=feed.pk,
        limit=feed.max_concurrency,
        lease_seconds=lease_seconds(),
        read_keys=[key for key in (slowdown_key, open_until_key) if key],
    )
    try:
        deferral = _permit_check(
            permit,
            batch=batch,
            slowdown=limits.slowdown_from(stored.get(slowdown_key)),
            open_until=stored.get(open_until_key) if open_until_key else None,
            now=now,
            rand=rand,
        )
    except BaseException:
        permit.release()
        raise
    if deferral is not None:
        permit.release()
        _refusal_note(feed.pk)
        return deferral
    return permit


def send_permit_ask(*, batch: Batch, now: float) -> Future[Permit | Deferral]:
    """Ask for ``batch``'s permit: on a send thread, so its round trip overlaps the claim's.

    A send claims its batch while the answer is on its way, and undoes the
    claim when the answer is "not now". For a feed refused a permit in this
    process lately (at its limits, its circuit open) "not now" is likely
    again: the permit is asked for here and now, and the future comes back
    done, so that a refusal costs no claim to undo. A shared store that fails
    to answer counts as a refusal: it is likely to fail the next send too.
    """
    if _refused_lately(batch.feed.pk):
        answered: Future[Permit | Deferral] = Future()
        try:
            answered.set_result(_permit_asked(batch=batch, now=now))
        except Exception as exc:
            answered.set_exception(exc)
        return answered
    return send_executor().submit(_permit_asked, batch=batch, now=now)


def _permit_asked(*, batch: Batch, now: float) -> Permit | Deferral:
    try:
        return send_permit(batch=batch, now=now)
    except Exception:
        _refusal_note(batch.feed.pk)
        raise


# Feeds refused a permit by this process lately, and until when that counts
# (time.monotonic()): a send of theirs asks before it claims.
_refusals: dict[int, float] = {}
_refusals_lock = threading.Lock()
_REFUSAL_MEMORY_SECONDS = 60.0


def _refusal_note(feed_id: int) -> None:
    now = time.monotonic()
    with _refusals_lock:
        for stale in [feed for feed, until in _refusals.items() if until <= now]:
            del _refusals[stale]
        _refusals[feed_id] = now + _REFUSAL_MEMORY_SECONDS


def _refused_lately(feed_id: int) -> bool:
    with _refusals_lock:
        return _refusals.get(feed_id, 0.0) > time.monotonic()


def refusals_forget() -> None:
    """Forget the refusals noted: every feed's next send asks beside its claim again."""
    with _refusals_lock:
        _refusals.clear()


def send_permit_drop(asking: Future[Permit | Deferral]) -> None:
    """Give back the permit ``send_permit_ask`` took, if it took one; the send will not go.

    Never raises: the send is abandoned for another reason already, and a
    shared store that failed to grant the permit has nothing to give back.
    """
    try:
        permit = asking.result()
    except Exception:
        logger.warning("asking for the send's permit failed", exc_info=True)
        return
    if isinstance(permit, Permit):
        permit.release()


def _permit_check(
    permit: Permit,
    *,
    batch: Batch,
    slowdown: limits.Slowdown,
    open_until: float | None,
    now: float,
    rand: Callable[[], float],
) -> Deferral | None:
    """Why the send must wait, if it must: pause, breaker, concurrency, rates, in that order."""
    feed = batch.feed
    if slowdown.pause_left(now):
        return Deferral(
            wait_seconds=slowdown.pause_left(now) * (1 + rand() / 10),
            reason="feed paused: the partner asked us to slow down",
        )
    if permit.endpoint_url:
        admission = circuit.circuit_admit_given(
            endpoint_url=permit.endpoint_url,
            now=now,
            probe_lease_seconds=lease_seconds(),
            open_until=open_until,
        )
        if not admission.allowed:
            return Deferral(
                # Spread out, so the sends waiting for an endpoint do not all return at once.
                wait_seconds=admission.wait_seconds * (1 + rand() / 10) + rand(),
                reason=f"circuit {admission.state.replace('_', '-')} for this endpoint",
            )
        permit.probe_token = admission.probe_token
    # The slot taken is the free one of the lowest index: beyond a slowed-down
    # limit, the slots below it are all taken.
    limit = slowed_limit(feed.max_concurrency, level=slowdown.level)
    if permit.slot is None or permit.slot.index >= limit:
        busy = settings.DELIVERY_BUSY_RETRY_SECONDS
        return Deferral(wait_seconds=busy * (1 + rand()), reason="feed at its concurrency limit")
    wait = limits.rate_reserve(
        feed_id=feed.pk, limits=_rate_limits(batch, level=slowdown.level), now=now
    )
    if wait > 0:
        return Deferral(wait_seconds=wait * (1 + rand() / 10), reason="feed at its rate limit")
    return None


def _rate_limits(batch: Batch, *, level: int) -> list[limits.RateLimit]:
    feed = batch.feed
    rates = []
    if feed.max_requests_per_second:
        rate = slowed_rate(feed.max_requests_per_second, level=level)
        rates.append(limits.RateLimit(name="requests", rate=rate, cost=1))
    if feed.max_events_per_second:
        rate = slowed_rate(feed.max_events_per_second, level=level)
        rates.append(limits.RateLimit(name="events", rate=rate, cost=batch.delivered_count))
    return rates


def retry_after_seconds(value: str | None, *, now: datetime) -> float | None:
    """A partner's Retry-After in seconds, within the configured bounds; None if absent or bad."""
    seconds = retry.parse_retry_after(value, now=now)
    if seconds is None:
        return None
    return retry.clamp_retry_after(
        seconds,
        minimum=settings.DELIVERY_RETRY_AFTER_MIN_SECONDS,
        maximum=settings.DELIVERY_RETRY_AFTER_MAX_SECONDS,
    )


# --- After an attempt -------------------------------------------------------------------


def outcome_note(
    *, batch: Batch, result: AttemptResult, permit: Permit, now: datetime
) -> circuit.CircuitChange | None:
    """The shared store's part of an attempt's outcome; returns the breaker's change, if any.

    The breaker counts the outcome, a 429/502/503/504 slows the feed down, and
    the permit is given back, whatever happens. No database here: a send runs
    this on another thread while PostgreSQL records the outcome
    (``outcome_note_start``), then draws the consequences
    (``outcome_consequences``) on its own.
    """
    try:
        status, network_error = result.http_status, result.network_error or None
        change = None
        if permit.endpoint_url and reached_endpoint(status=status, network_error=network_error):
            change = circuit.circuit_record(
                endpoint_url=permit.endpoint_url,
                failed=is_endpoint_failure(status=status, network_error=network_error),
                now=now.timestamp(),
                probe_token=permit.probe_token,
            )
            permit.probe_token = None  # recorded: the probe's outcome is in
        if retry.is_slow_down(status):
            pause = retry_after_seconds(result.retry_after, now=now)
            limits.slowdown_note(
                feed_id=batch.feed.pk,
                pause_seconds=settings.DELIVERY_SLOWDOWN_PAUSE_SECONDS if pause is None else pause,
                now=now.timestamp(),
                max_level=settings.DELIVERY_SLOWDOWN_MAX_LEVEL,
                hold_seconds=settings.DELIVERY_SLOWDOWN_SECONDS,
            )
        return change
    finally:
        permit.release()


def outcome_note_start(
    *, batch: Batch, result: AttemptResult, permit: Permit, now: datetime
) -> Future[circuit.CircuitChange | None]:
    """``outcome_note`` on a send thread: its round trips overlap the caller's own."""
    return send_executor().submit(outcome_note, batch=batch, result=result, permit=permit, now=now)


def outcome_consequences(
    *, batch: Batch, result: AttemptResult, change: circuit.CircuitChange | None, now: datetime
) -> None:
    """The feed-level consequences of an outcome already recorded: notices, disabling the feed.

    After the outcome is committed: the failure streak that may disable the
    feed is read from the attempt rows, this one's included.
    """
    feed = batch.feed
    if change in ("opened", "reopened"):
        _circuit_opened(feed=feed, change=change, now=now.timestamp())
    if retry.is_gone(result.http_status):
        feed_disable(
            feed=feed,
            code="gone",
            reason=f"the endpoint answered 410 Gone to batch #{batch.sequence}",
            now=now,
        )
    elif result.outcome in FAILED_OUTCOMES:
        feed_auto_disable_if_failing(feed=feed, now=now)


def _circuit_opened(*, feed: Feed, change: str, now: float) -> None:
    snapshot = circuit.snapshot_at(endpoint_url=feed.endpoint_url, now=now)
    until = f"{snapshot.open_until:%Y-%m-%d %H:%M:%S} UTC" if snapshot.open_until else "later"
    message = (
        f"The circuit breaker of {feed.endpoint_url} {change}: {snapshot.failures} of "
        f"{snapshot.requests} recent attempts failed. Sends to it wait until {until}."
    )
    logger.warning("feed %s: %s", feed.pk, message)
    if change == "opened":
        FeedNotice.objects.create(
            feed=feed, level=FeedNotice.Level.WARNING, code="circuit_open", message=message
        )


def feed_failing_since(*, feed: Feed) -> datetime | None:
    """When the feed's current streak of failed attempts began; None when its last one succeeded.

    A streak starts after the last successful attempt, and never before the
    feed was last disabled (re-enabling a feed gives it a fresh start).
    """
    attempts = DeliveryAttempt.objects.filter(batch__feed_id=feed.pk)
    since = attempts.filter(outcome=DeliveryAttempt.Outcome.SUCCEEDED).aggregate(
        at=Max("started_at")
    )["at"]
    if feed.disabled_at is not None:
        since = max(since, feed.disabled_at) if since else feed.disabled_at
    failures = attempts.filter(outcome__in=FAILED_OUTCOMES)
    if since is not None:
        failures = failures.filter(started_at__gt=since)
    return failures.aggregate(at=Min("started_at"))["at"]


def feed_auto_disable_if_failing(*, feed: Feed, now: datetime) -> bool:
    """Disable the feed when it has failed without a success for its configured hours."""
    hours = feed.auto_disable_after_hours
    if not hours:
        return False
    since = feed_failing_since(feed=feed)
    if since is None or now - since < timedelta(hours=hours):
        return False
    return feed_disable(
        feed=feed,
        code="feed_disabled",
        reason=(
            f"every delivery attempt failed since {since:%Y-%m-%d %H:%M} UTC "
            f"(more than {hours} h); disabled automatically"
        ),
        now=now,
    )


def feed_disable(*, feed: Feed, code: str, reason: str, now: datetime) -> bool:
    """Disable an enabled feed, with a notice for the admin and an alert; False if it was off."""
    reason = reason[: Feed._meta.get_field("disabled_reason").max_length]
    with transaction.atomic():
        # Conditional: of two workers seeing the same failure, one disables and alerts.
        disabled = Feed.objects.filter(pk=feed.pk, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
        )
        if not disabled:
            return False
        FeedNotice.objects.create(
            feed=feed, level=FeedNotice.Level.ERROR, code=code, message=reason
        )
        alert_on_commit(
            Alert(
                code=code,
                subject=f"feed {feed} disabled",
                message=f"The gateway disabled feed {feed}: {reason}. "
                "Re-enable it in the admin once the partner has fixed its endpoint.",
                feed_id=feed.pk,
                feed=str(feed),
                at=now,
            )
        )
    feed.enabled, feed.disabled_reason, feed.disabled_at = False, reason, now
    logger.warning("feed %s disabled (%s): %s", feed.pk, code, reason)
    return True
