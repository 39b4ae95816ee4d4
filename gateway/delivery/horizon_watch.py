"""Is the commit horizon held back, for how long, and by which transaction.

Claims advance only up to the commit horizon (``claims.commit_horizon``): the
oldest write transaction still running on the PostgreSQL *server*, whatever
its database. One write transaction left open (a migration, a script idle in
a transaction, a forgotten prepared transaction) therefore holds back every
feed: window batches come out without the exposures committed since it
began, late batches wait, and streaming feeds stop, until it ends. Nothing is
lost, but nothing new is delivered either, so on-call must hear of it:

- ``horizon_lag_seconds`` measures the symptom and needs no privilege: how
  long the oldest exposure committed above the horizon has waited since it
  was received.
- ``horizon_holder`` names the transaction from ``pg_stat_activity`` and
  ``pg_prepared_xacts``. Another role's session shows only to a role with
  ``pg_read_all_stats``; without it the holder may stay unknown.
- ``horizon_watch`` (run by the dispatcher) alerts when the lag passes
  ``DELIVERY_HORIZON_ALERT_SECONDS``: once per holder and hour.

On SQLite (the demo) writers take turns and nothing waits above the horizon.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from gateway.delivery.alerts import Alert, alert_send
from gateway.delivery.claims import commit_horizon
from gateway.ingest.models import Exposure

logger = logging.getLogger(__name__)

ALERT_CODE = "commit_horizon_held"
# While the same transaction holds the horizon, the alert is repeated this often.
REALERT_SECONDS = 3600

# The running transaction with the oldest transaction id: the one whose id is
# the horizon. Read-only transactions have no id and hold nothing back.
_OLDEST_WRITER_SQL = """
SELECT pid, datname, usename, application_name, client_addr::text, state, xact_start
FROM (
    SELECT pid, datname, usename, application_name, client_addr, state, xact_start,
           age(backend_xid) AS xid_age
    FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    UNION ALL
    SELECT NULL, database, owner, gid, NULL, 'prepared', prepared, age(transaction)
    FROM pg_prepared_xacts
) AS writers
ORDER BY xid_age DESC
LIMIT 1
"""


@dataclass(frozen=True)
class HorizonHolder:
    """The transaction the commit horizon waits for; ``pid`` is None for a prepared one."""

    pid: int | None
    database: str
    user: str
    # application_name, or a prepared transaction's global id
    application: str
    client: str
    state: str
    since: datetime | None

    @property
    def alert_key(self) -> str:
        since = self.since.isoformat() if self.since else ""
        return f"{self.pid}:{self.application}:{since}"

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "prepared transaction"
        since = f" since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        return (
            f"{who} ({self.state or 'state unknown'}{since}; database {self.database!r}, "
            f"user {self.user!r}, application {self.application!r}, "
            f"client {self.client or 'local'})"
        )


def horizon_lag_seconds(*, now: datetime) -> float:
    """How long the oldest exposure committed at or above the horizon has waited; 0 if none."""
    received = (
        Exposure.objects.filter(commit_seq__gte=commit_horizon())
        .order_by("commit_seq")
        .values_list("received_at", flat=True)
        .first()
    )
    return 0.0 if received is None else max(0.0, (now - received).total_seconds())


def horizon_holder() -> HorizonHolder | None:
    """The oldest running write transaction on the server, if PostgreSQL shows one to us."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_WRITER_SQL)
        row = cursor.fetchone()
    if row is None:
        return None
    pid, database, user, application, client, state, since = row
    return HorizonHolder(
        pid=pid,
        database=database or "",
        user=user or "",
        application=application or "",
        client=client or "",
        state=state or "",
        since=since,
    )


def horizon_watch(*, now: datetime) -> float:
    """Alert on-call when claims have waited on the horizon too long; returns the lag (s)."""
    lag = horizon_lag_seconds(now=now)
    if lag < settings.DELIVERY_HORIZON_ALERT_SECONDS:
        return lag
    holder = horizon_holder()
    key = f"delivery:horizon-alert:{holder.alert_key if holder else 'unknown'}"
    if cache.add(key, 1, timeout=REALERT_SECONDS):
        alert_send(_alert(lag=lag, holder=holder, now=now))
    return lag


def _alert(*, lag: float, holder: HorizonHolder | None, now: datetime) -> Alert:
    minutes = int(lag // 60)
    culprit = (
        f"The oldest running write transaction is {holder.describe()}."
        if holder is not None
        else "PostgreSQL shows no transaction to this role: grant it pg_read_all_stats "
        "to see other roles' sessions."
    )
    return Alert(
        code=ALERT_CODE,
        subject=f"deliveries held back for {minutes} min by a long transaction",
        message=(
            f"Exposures committed {minutes} minutes ago are not yet claimed by any feed: "
            "the commit horizon waits for a write transaction that is still open on the "
            f"database server. {culprit} Nothing is lost; every feed catches up (as late "
            "batches) once it ends. Ending it: commit or roll it back where it runs, or "
            "pg_terminate_backend(pid); a prepared one with ROLLBACK PREPARED."
        ),
        at=now,
    )
