"""Retries attempt by attempt, and the idempotency paths of createInvoice and transfer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from payments import (
    CryptoPayTimeoutError,
    CryptoPayTransportError,
    InvalidParamsError,
    MethodDisabledError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)

from .conftest import fail, load_vector, ok

INVOICE = load_vector("responses/createInvoice.json")["samples"][0]["response"]["result"]
TRANSFER = load_vector("responses/transfer.json")["samples"][0]["response"]["result"]


def script(*steps: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """Answer each request with the next step (an exception is raised by the transport)."""
    it: Iterator[httpx.Response | Exception] = iter(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        step = next(it)
        if isinstance(step, Exception):
            raise step
        return step

    return handler


def by_method(**routes: Callable[[httpx.Request], httpx.Response]):
    def handler(request: httpx.Request) -> httpx.Response:
        return routes[request.url.path.rsplit("/", 1)[-1]](request)

    return handler


# -- reads -------------------------------------------------------------------------------------


async def test_read_retried_on_5xx_with_growing_jittered_backoff(make_client, fake_time):
    client, server = make_client(
        script(fail(503, "X"), httpx.Response(502, text="<html>"), ok(True)),
        backoff_base=1.0,
    )
    assert await client.delete_check(1) is True
    assert len(server.requests) == 3
    assert len(fake_time.sleeps) == 2
    assert 0.5 <= fake_time.sleeps[0] <= 1.0
    assert 1.0 <= fake_time.sleeps[1] <= 2.0


async def test_read_retried_on_transport_errors(make_client, fake_time):
    client, server = make_client(
        script(httpx.ReadError("reset"), httpx.ConnectError("refused"), ok([])),
    )
    assert await client.get_balance() == []
    assert server.methods == ["getBalance"] * 3


async def test_retry_after_is_honoured(make_client, fake_time):
    client, server = make_client(
        script(
            httpx.Response(
                429,
                headers={"Retry-After": "5"},
                json={"ok": False, "error": {"code": 429, "name": "TOO_MANY_REQUESTS"}},
            ),
            ok([]),
        ),
        backoff_base=0.1,
    )
    assert await client.get_exchange_rates() == []
    assert len(server.requests) == 2
    assert fake_time.sleeps == [5.0]


async def test_retry_after_beyond_the_deadline_gives_up_at_once(make_client, fake_time):
    client, server = make_client(
        script(
            httpx.Response(
                429,
                headers={"Retry-After": "120"},
                json={"ok": False, "error": {"code": 429, "name": "X"}},
            )
        ),
        total_deadline=30,
    )
    with pytest.raises(RateLimitedError):
        await client.get_me()
    assert len(server.requests) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (fail(400, "STATUS_INVALID"), InvalidParamsError),
        (fail(401, "UNAUTHORIZED"), UnauthorizedError),
        (fail(403, "METHOD_DISABLED"), MethodDisabledError),
    ],
)
async def test_no_retry_on_4xx(make_client, fake_time, response, error):
    client, server = make_client(lambda r: response)
    with pytest.raises(error):
        await client.get_invoices()
    assert len(server.requests) == 1 and fake_time.sleeps == []


async def test_attempts_are_bounded(make_client, fake_time):
    client, server = make_client(lambda r: fail(500, "APP_ERROR"), max_attempts=3)
    with pytest.raises(ServerError):
        await client.get_balance()
    assert len(server.requests) == 3 and len(fake_time.sleeps) == 2


async def test_total_deadline_bounds_the_retries(make_client, fake_time):
    client, server = make_client(
        lambda r: fail(500, "APP_ERROR"),
        max_attempts=100,
        total_deadline=10,
        backoff_base=1,
        backoff_max=4,
    )
    with pytest.raises(ServerError):
        await client.get_balance()
    assert sum(fake_time.sleeps) < 10
    assert 3 <= len(server.requests) < 10


# -- createInvoice -------------------------------------------------------------------------------


def invoice_with(payload: str | None, invoice_id: int = 528890) -> dict[str, object]:
    return {**INVOICE, "payload": payload, "invoice_id": invoice_id}


async def test_create_invoice_ambiguous_timeout_returns_existing_invoice(make_client):
    created = iter([httpx.ReadTimeout("slow")])

    def create(request: httpx.Request) -> httpx.Response:
        raise next(created)

    client, server = make_client(
        by_method(
            createInvoice=create,
            getInvoices=lambda r: ok(
                {"items": [invoice_with("order:7", 2), invoice_with("order:8", 3)]}
            ),
        )
    )
    invoice = await client.create_invoice("1", asset="TON", payload="order:8")
    assert invoice.invoice_id == 3
    assert server.methods == ["createInvoice", "getInvoices"]
    assert server.params(1) == {"offset": 0, "count": 100}


async def test_create_invoice_resent_only_after_lookup_finds_nothing(make_client):
    client, server = make_client(
        by_method(
            createInvoice=script(fail(502, "BAD_GATEWAY"), ok(invoice_with("order:9", 10))),
            getInvoices=lambda r: ok({"items": [invoice_with("order:1", 1)]}),
        )
    )
    invoice = await client.create_invoice("1", asset="TON", payload="order:9")
    assert invoice.invoice_id == 10
    assert server.methods == ["createInvoice", "getInvoices", "createInvoice"]
    assert server.params(0) == server.params(2)


async def test_create_invoice_lookup_walks_newest_pages(make_client):
    page0 = {"items": [invoice_with(f"other:{i}", i) for i in range(100)]}
    page1 = {"items": [invoice_with("order:5", 555)]}
    client, server = make_client(
        by_method(
            createInvoice=script(httpx.ReadTimeout("slow")),
            getInvoices=lambda r: ok(page1 if json.loads(r.content)["offset"] else page0),
        )
    )
    invoice = await client.create_invoice("1", asset="TON", payload="order:5")
    assert invoice.invoice_id == 555
    assert [server.params(i).get("offset") for i in (1, 2)] == [0, 100]


async def test_create_invoice_without_payload_is_never_resent_after_ambiguity(make_client):
    client, server = make_client(script(httpx.ReadTimeout("slow"), ok(INVOICE)))
    with pytest.raises(CryptoPayTimeoutError) as info:
        await client.create_invoice("1", asset="TON")
    assert info.value.ambiguous
    assert server.methods == ["createInvoice"]


async def test_create_invoice_lookup_failure_reports_ambiguity(make_client):
    client, server = make_client(
        by_method(
            createInvoice=script(httpx.ReadTimeout("slow")),
            getInvoices=lambda r: fail(500, "APP_ERROR"),
        ),
        max_attempts=2,
    )
    with pytest.raises(CryptoPayTimeoutError) as info:
        await client.create_invoice("1", asset="TON", payload="order:1")
    assert info.value.ambiguous
    assert server.methods == ["createInvoice", "getInvoices", "getInvoices"]


async def test_create_invoice_retried_when_request_never_left(make_client):
    client, server = make_client(script(httpx.ConnectError("refused"), ok(INVOICE)))
    invoice = await client.create_invoice("1", asset="TON", payload="order:1")
    assert invoice.invoice_id == INVOICE["invoice_id"]
    assert server.methods == ["createInvoice", "createInvoice"]


async def test_create_invoice_not_retried_on_4xx(make_client):
    client, server = make_client(lambda r: fail(400, "UNSUPPORTED_ASSET"))
    with pytest.raises(InvalidParamsError):
        await client.create_invoice("1", asset="NOPE", payload="order:1")
    assert server.methods == ["createInvoice"]


async def test_create_check_not_resent_after_ambiguity(make_client):
    client, server = make_client(script(fail(500, "APP_ERROR"), ok({})))
    with pytest.raises(ServerError):
        await client.create_check("TON", "1")
    assert server.methods == ["createCheck"]


# -- transfer --------------------------------------------------------------------------------------


async def test_transfer_ambiguous_then_found_by_spend_id(make_client):
    client, server = make_client(
        by_method(
            transfer=script(httpx.ReadTimeout("slow")),
            getTransfers=lambda r: ok(
                {"items": [{**TRANSFER, "spend_id": "refund-1", "transfer_id": 77}]}
            ),
        )
    )
    transfer = await client.transfer(1, "TON", "10.5", "refund-1")
    assert transfer.transfer_id == 77
    assert server.methods == ["transfer", "getTransfers"]
    assert server.params(1) == {"spend_id": "refund-1"}


async def test_transfer_resent_with_same_spend_id_when_not_found(make_client):
    client, server = make_client(
        by_method(
            transfer=script(httpx.RemoteProtocolError("eof"), ok(TRANSFER)),
            getTransfers=lambda r: ok({"items": []}),
        )
    )
    await client.transfer(1, "TON", "10.5", "refund-2")
    assert server.methods == ["transfer", "getTransfers", "transfer"]
    assert server.params(0) == server.params(2)
    assert server.params(2)["spend_id"] == "refund-2"


async def test_transfer_rejected_resend_is_looked_up_again(make_client):
    lookups = iter(
        [ok({"items": []}), ok({"items": [{**TRANSFER, "spend_id": "r3", "transfer_id": 9}]})]
    )
    client, server = make_client(
        by_method(
            transfer=script(httpx.ReadTimeout("slow"), fail(400, "SPEND_ID_ALREADY_USED")),
            getTransfers=lambda r: next(lookups),
        )
    )
    transfer = await client.transfer(1, "TON", "1", "r3")
    assert transfer.transfer_id == 9
    assert server.methods == ["transfer", "getTransfers", "transfer", "getTransfers"]


async def test_transfer_retried_without_lookup_when_never_sent(make_client):
    client, server = make_client(script(httpx.ConnectError("refused"), ok(TRANSFER)))
    await client.transfer(1, "TON", "1", "r4")
    assert server.methods == ["transfer", "transfer"]


async def test_transfer_method_disabled_is_not_retried(make_client):
    client, server = make_client(lambda r: fail(403, "METHOD_DISABLED", description="enable it"))
    with pytest.raises(MethodDisabledError) as info:
        await client.transfer(1, "TON", "1", "r5")
    assert server.methods == ["transfer"]
    assert "enable it" in str(info.value)


async def test_transport_error_is_ours_and_ambiguity_is_classified(make_client):
    client, _ = make_client(script(httpx.ConnectError("refused")), max_attempts=1)
    with pytest.raises(CryptoPayTransportError) as info:
        await client.get_me()
    assert not info.value.ambiguous and info.value.code is None
    client, _ = make_client(script(httpx.ReadError("reset")), max_attempts=1)
    with pytest.raises(CryptoPayTransportError) as info:
        await client.get_me()
    assert info.value.ambiguous


async def test_observer_sees_every_attempt_with_its_error(make_client, fake_time):
    seen: list[tuple[str, float, str | None]] = []
    client, _ = make_client(
        script(fail(503, "SERVICE_UNAVAILABLE"), ok(True)),
        observer=lambda method, seconds, error: seen.append((method, seconds, error)),
    )
    assert await client.delete_check(1) is True
    assert [(m, e) for m, _, e in seen] == [
        ("deleteCheck", "SERVICE_UNAVAILABLE"),
        ("deleteCheck", None),
    ]
    assert all(seconds >= 0 for _, seconds, _ in seen)


async def test_a_failing_observer_never_fails_the_call(make_client, fake_time):
    def broken(*_: object) -> None:
        raise RuntimeError("metrics bug")

    client, _ = make_client(script(ok(True)), observer=broken)
    assert await client.delete_check(1) is True
