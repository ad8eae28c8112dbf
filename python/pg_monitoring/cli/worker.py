"""`pg-monitoring worker`: delivers alerts from the outbox (pg_monitoring.alerts.worker)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click

from ..alerts.senders import Timeouts
from ..alerts.worker import OPTION_WORDS, Worker, WorkerOptions
from .common import dsn_option, reported_errors

# Other libraries' loggers: a line per connection and request (httpx: per request at INFO),
# kept to warnings unless -vv asks.
LIBRARY_LOGGERS = ("httpx", "httpcore", "urllib3", "asyncio", "psycopg")
# The options the stored functions check, as this command spells them: in its errors and in
# the worker's log.
FLAGS = {
    "p_lease_seconds": "--lease",
    "p_max_attempts": "--max-attempts",
    "p_retry_base_seconds": "--retry-base",
    "p_retry_max_seconds": "--retry-max",
}


@click.command()
@dsn_option
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--poll-interval",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between looks at the outbox when no NOTIFY comes.",
)
@click.option(
    "--lease",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds a claim lasts; a crashed worker's claims come back after it.",
)
@click.option("--max-attempts", type=click.IntRange(min=1), help="[default: alerts.max_attempts]")
@click.option(
    "--retry-base", type=click.FloatRange(min=0), help="[default: alerts.retry_base_seconds]"
)
@click.option(
    "--retry-max", type=click.FloatRange(min=0), help="[default: alerts.retry_max_seconds]"
)
@click.option(
    "--fold-every",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between folds of event counts, when threshold rules fire; 0: never.",
)
@click.option(
    "--maintenance-every",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between run_maintenance calls; 0: never (pg_cron does it).",
)
@click.option("--http-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--smtp-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option(
    "--once",
    is_flag=True,
    help="Fold counts and run maintenance (unless their timers are 0), deliver what is due, exit.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="-v: log every fold and maintenance run; -vv: the HTTP and SMTP libraries' too.",
)
def worker(
    dsn: str,
    concurrency: int,
    poll_interval: float,
    lease: float,
    max_attempts: int | None,
    retry_base: float | None,
    retry_max: float | None,
    fold_every: float,
    maintenance_every: float,
    http_timeout: float,
    smtp_timeout: float,
    once: bool,
    verbose: int,
) -> None:
    """Deliver alerts from the outbox until SIGTERM (finishing the sends in flight).

    Connect as a role granted monitoring_admin: the worker reads the channels' secrets.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose < 2:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        options = WorkerOptions(
            concurrency=concurrency,
            poll_interval=poll_interval,
            lease=lease,
            max_attempts=max_attempts,
            retry_base=retry_base,
            retry_max=retry_max,
            fold_every=fold_every,
            maintenance_every=maintenance_every,
            timeouts=Timeouts(http=http_timeout, smtp=smtp_timeout),
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    delivery = Worker(dsn, options, words={**OPTION_WORDS, **FLAGS})
    with reported_errors(FLAGS):
        if once:
            with delivery:
                outcomes = delivery.run_once()
            for outcome in outcomes:
                click.echo(f"#{outcome.id} {outcome.channel}: {outcome.status or 'claim lost'}")
            click.echo(f"{len(outcomes)} notification(s) handled.")
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: _stop_soon(delivery))
        delivery.run()


def _stop_soon(delivery: Worker) -> None:
    # Not stop() itself: a signal handler runs between two bytecodes of the main thread,
    # which may hold the lock of the event stop() sets.
    threading.Thread(target=delivery.stop, name="pg_monitoring-stop").start()


COMMANDS = (worker,)
