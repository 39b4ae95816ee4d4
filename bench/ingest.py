"""Ingest throughput: the bulk API against a raw PostgreSQL COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/ingest.py --events 100000

The script works in its own database (``--database``, default ``bench_ingest``,
on the server DATABASE_URL points at), creating and migrating it if needed and
emptying the exposure table before each measurement; it never writes to the
database named in DATABASE_URL.

(a) API: N synthetic valid records are cut into gzipped NDJSON bodies of
``--batch`` records (built before the clock starts: that is the ad server's
work) and POSTed one after the other through Django's real WSGI handler,
in-process, so middleware, token check, inflating, parsing, validation,
de-duplication and the INSERTs are all counted; only the socket is not.
(b) COPY: the very rows the API stored, written with one ``COPY ... FROM STDIN``
(psycopg 3) into the same table with the same indexes: the database's ceiling.

Then the API time is split into stages: the INSERTs (``exposures_insert``) are
timed within the API pass, wall clock and this process's CPU (the rest of their
time is PostgreSQL's); parsing and validation are timed alone on the same
bodies; what remains is HTTP handling, the token check, the within-batch
de-duplication and the response. ``--profile`` adds a cProfile of one API pass.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import gzip
import io
import json
import os
import pstats
import random
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = (
    "event_id",
    "occurred_at",
    "received_at",
    "event_type",
    "media_type",
    "content_type",
    "advertiser_id",
    "campaign_id",
    "line_item_id",
    "creative_id",
    "payload",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="records to ingest")
    parser.add_argument("--batch", type=int, default=5_000, help="records per request")
    parser.add_argument("--database", default="bench_ingest", help="database to create and use")
    parser.add_argument("--profile", action="store_true", help="cProfile one API pass")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    django_setup(database=args.database)
    from django.conf import settings

    if args.batch > settings.INGEST_MAX_EVENTS:
        sys.exit(f"--batch {args.batch} is above INGEST_MAX_EVENTS={settings.INGEST_MAX_EVENTS}")

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    records = [synthetic_record(rng, now=now) for _ in range(args.events)]
    bodies = [
        gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in chunk), compresslevel=6)
        for chunk in chunks(records, args.batch)
    ]
    raw_mb = sum(len(json.dumps(r)) + 1 for r in records) / 1e6
    sent_mb = sum(len(b) for b in bodies) / 1e6
    print(f"{args.events} records in {len(bodies)} requests of up to {args.batch}")
    print(f"  NDJSON {raw_mb:.1f} MB, gzipped {sent_mb:.1f} MB ({raw_mb / sent_mb:.1f}x)")
    # A server holds one request's records, not the whole run's: drop them and keep
    # the garbage collector from walking the bench's own objects during the runs.
    del records
    gc.collect()
    gc.freeze()

    table_empty()
    token = token_issue()
    with insert_timed() as insert_time:
        api_seconds = timed(lambda: api_post_all(bodies, token=token))
    stored = exposure_rows()
    if len(stored) != args.events:
        sys.exit(f"the API stored {len(stored)} of {args.events} records: not a fair comparison")

    table_empty()
    copy_seconds = timed(lambda: copy_rows(stored))
    table_empty()
    stored.clear()
    gc.collect()

    parse_seconds, validate_seconds = stages_time(bodies)

    api_rate = args.events / api_seconds
    copy_rate = args.events / copy_seconds
    print(f"(a) API, gzip NDJSON x{args.batch}: {api_seconds:7.2f} s {api_rate:10,.0f} events/s")
    print(f"(b) COPY, one statement:   {copy_seconds:7.2f} s {copy_rate:10,.0f} events/s")
    print(f"    COPY / API: {copy_rate / api_rate:.1f}x")
    print("API time by stage (INSERT timed in the API pass, parse and validation alone):")
    for name, seconds in (
        ("inflate + NDJSON parse", parse_seconds),
        ("validation + normalising", validate_seconds),
        ("INSERT (exposures_insert)", insert_time.wall),
        ("  of which building and dumping parameters", insert_time.cpu),
        ("  of which waiting on PostgreSQL", insert_time.wall - insert_time.cpu),
        (
            "rest, by difference: HTTP, auth, response",
            api_seconds - parse_seconds - validate_seconds - insert_time.wall,
        ),
    ):
        print(f"  {name:44} {seconds:6.2f} s {100 * seconds / api_seconds:5.1f} %")

    if args.profile:
        table_empty()
        profiler = cProfile.Profile()
        profiler.runcall(api_post_all, bodies, token=token_issue())
        table_empty()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())


def django_setup(*, database: str) -> None:
    """Point Django at ``database`` on the DATABASE_URL server, creating and migrating it."""
    sys.path.insert(0, str(ROOT))
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("Set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1/x")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to benchmark against {host!r}: loopback only")

    import psycopg

    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')

    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Benchmark-only defaults; any value already in the environment wins.
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    # No collectstatic in a benchmark: WhiteNoise's warning about it is noise.
    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers")

    django.setup()
    call_command("migrate", verbosity=0)


def synthetic_record(rng: random.Random, *, now: datetime) -> dict[str, Any]:
    """A valid record with the variety of a real feed (ids, types, geo, consent)."""
    occurred = now - timedelta(seconds=rng.randint(0, 86_400), microseconds=rng.randint(0, 999))
    offset = rng.choice([0, 60, -300, 330])
    local = occurred.astimezone(timezone(timedelta(minutes=offset)))
    campaign = rng.randint(1, 200)
    media = rng.choice(["audio", "audio", "video", "display"])
    ipv4 = rng.random() < 0.8
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "occurred_at": local.isoformat(),
        "event_type": rng.choice(
            ["impression"] * 6 + ["start", "first_quartile", "midpoint", "complete", "click"]
        ),
        "media_type": media,
        "content_type": rng.choice(["music", "podcast", "video", "other"]),
        "advertiser_id": f"adv-{campaign % 40}",
        "campaign_id": f"cmp-{campaign}",
        "line_item_id": f"li-{campaign}-{rng.randint(1, 5)}",
        "creative_id": f"cr-{campaign}-{rng.randint(1, 9)}",
        "placement_id": f"pl-{rng.randint(1, 500)}",
        "content_id": f"ep-{rng.randint(1, 100_000)}",
        "device": {
            "type": rng.choice(["mobile", "desktop", "ctv", "speaker"]),
            "os": rng.choice(["ios", "android", "windows", "tizen"]),
            "ifa": str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
            "lmt": rng.random() < 0.1,
        },
        "ip": (
            ".".join(str(rng.randint(1, 254)) for _ in range(4))
            if ipv4
            else f"2001:db8::{rng.randint(1, 0xFFFF):x}"
        ),
        "user_agent": "Podcasts/1580.2 CFNetwork/1410.0.3 Darwin/22.6.0",
        "geo": {
            "country": rng.choice(["US", "US", "GB", "DE", "FR", "CA"]),
            "region": "CA",
            "city": "Oakland",
            "postal_code": f"{rng.randint(10000, 99999)}",
            "lat": round(rng.uniform(-60, 70), 5),
            "lon": round(rng.uniform(-170, 170), 5),
        },
        "user_id": f"user-{rng.randint(1, 10_000_000)}",
        "household_id": f"hh-{rng.randint(1, 3_000_000)}",
        "consent": {
            "gdpr": rng.choice([0, 1]),
            "tcf": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
            "us_privacy": "1YNN",
            "gpc": False,
            "coppa": False,
        },
    }


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def token_issue() -> str:
    from gateway.ingest.services import ingest_token_create

    _token, plaintext = ingest_token_create(name="bench")
    return plaintext


def api_post_all(bodies: list[bytes], *, token: str) -> None:
    """POST every body through the project's WSGI application, as gunicorn would call it."""
    from config.wsgi import application

    for body in bodies:
        status, payload = wsgi_post(application, body, token=token)
        if not status.startswith("202"):
            sys.exit(f"API answered {status}: {payload[:500]!r}")


def wsgi_post(application: Any, body: bytes, *, token: str) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/exposures",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-ndjson",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_CONTENT_ENCODING": "gzip",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []
    response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        payload = b"".join(response)
    finally:
        response.close()
    return statuses[0], payload


@dataclass
class StageTime:
    """Seconds spent in one stage: wall clock, and this process's CPU within it."""

    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def insert_timed() -> Iterator[StageTime]:
    """Time every ``exposures_insert`` the ingest service makes while the block runs.

    The service's reference is swapped for a timing wrapper: the stage is timed
    in the real API pass, not re-run alone, so it adds up with the API time.
    """
    from gateway.ingest import services

    spent = StageTime()
    insert = services.exposures_insert

    def timed_insert(**kwargs: Any) -> set[str]:
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return insert(**kwargs)
        finally:
            spent.wall += time.perf_counter() - start
            spent.cpu += time.process_time() - start_cpu

    services.exposures_insert = timed_insert
    try:
        yield spent
    finally:
        services.exposures_insert = insert


def stages_time(bodies: list[bytes]) -> tuple[float, float]:
    """Seconds spent parsing and validating ``bodies``, one body at a time as the API does."""
    from django.conf import settings

    from gateway.ingest.parsing import BodyFormat, records_parse
    from gateway.ingest.validation import exposure_validate

    body_format = BodyFormat(ndjson=True, gzip=True)
    now = datetime.now(UTC)
    parse_seconds = validate_seconds = 0.0
    for body in bodies:
        start = time.perf_counter()
        records = records_parse(
            body=body,
            body_format=body_format,
            max_decompressed_bytes=settings.INGEST_MAX_DECOMPRESSED_BYTES,
            max_events=settings.INGEST_MAX_EVENTS,
        )
        parsed = time.perf_counter()
        checked = [exposure_validate(record=record, now=now) for record in records]
        validate_seconds += time.perf_counter() - parsed
        parse_seconds += parsed - start
        if any(c.problems for c in checked):
            sys.exit("a synthetic record failed validation")
        # The API drops a request's records before the next one; holding them
        # while parsing the next body would give the garbage collector twice
        # the objects to walk and make these stages look slower than they are.
        del records, checked
    return parse_seconds, validate_seconds


def table_empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE ingest_exposure, ingest_ingesttoken RESTART IDENTITY")
        cursor.execute("VACUUM ANALYZE ingest_exposure")


def exposure_rows() -> list[tuple[Any, ...]]:
    """The stored rows, ready for COPY: the payload back as JSON text."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS[:-1])}, payload::text FROM ingest_exposure ORDER BY id"
        )
        return cursor.fetchall()


def copy_rows(rows: list[tuple[Any, ...]]) -> None:
    from django.db import connection, transaction

    statement = f"COPY ingest_exposure ({', '.join(COLUMNS)}) FROM STDIN"
    # cursor.cursor is the psycopg 3 cursor under Django's wrapper.
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            copy.write_row(row)


if __name__ == "__main__":
    main()
