"""A small FastAPI application reporting with the real sentry-sdk through PostgresTransport,
served by uvicorn in tests/test_sentry_transport.py. PGM_APP_DSN: a monitoring_writer."""

from __future__ import annotations

import logging
import os
from typing import Any

import sentry_sdk
from fastapi import FastAPI

from pg_monitoring.sentry import PostgresTransport

transport = PostgresTransport(os.environ["PGM_APP_DSN"], service="shop", timeout=1.0)
sentry_sdk.init(
    transport=transport,
    traces_sample_rate=1.0,
    send_default_pii=True,  # the request's headers and the user's address, as the test reads
    environment="test",
)
logger = logging.getLogger("shop")
app = FastAPI()


class PaymentTimeout(Exception):
    pass


@app.get("/items/{number}")
async def item(number: int) -> dict[str, int]:
    return {"number": number}


@app.get("/checkout/{order}")
async def checkout(order: int) -> None:
    sentry_sdk.set_user({"id": f"user-{order}", "email": "ada@example.com"})
    logger.warning("cart of order %s is large", order)  # a breadcrumb
    raise PaymentTimeout(f"payment for order {order} timed out")


@app.get("/stats")
async def stats() -> dict[str, Any]:
    counts = transport.stats()
    counts["lost"] = {f"{c}:{r}": n for (c, r), n in counts["lost"].items()}
    return counts


@app.post("/flush")
async def flush() -> dict[str, Any]:
    sentry_sdk.flush(timeout=10)
    return await stats()
