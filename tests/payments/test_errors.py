"""Error envelopes, odd bodies and the exception hierarchy."""

from __future__ import annotations

import httpx
import pytest

from payments import (
    AppSuspendedError,
    CryptoPayAPIError,
    CryptoPayError,
    InvalidParamsError,
    MethodDisabledError,
    MethodNotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)

from .conftest import TOKEN, load_vector

ERRORS = load_vector("responses/errors.json")["samples"]
EXPECTED = {
    "UNAUTHORIZED": UnauthorizedError,
    "STATUS_INVALID": InvalidParamsError,
    "UNSUPPORTED_ASSET": InvalidParamsError,
    "PAID_BTN_URL_REQUIRED": InvalidParamsError,
    "METHOD_DISABLED": MethodDisabledError,
    "METHOD_NOT_FOUND": MethodNotFoundError,
    "EXPIRES_IN_INVALID": InvalidParamsError,
    "ASSET_INVALID": InvalidParamsError,
    "INVOICE_NOT_FOUND": InvalidParamsError,
    "APP_ERROR": ServerError,
}


@pytest.mark.parametrize(
    "sample",
    ERRORS,
    ids=[
        str(s["body"]["error"]["name"]) if isinstance(s["body"], dict) else str(s["http_status"])
        for s in ERRORS
    ],
)
async def test_every_error_envelope(make_client, sample):
    status, body = sample["http_status"], sample["body"]
    if isinstance(body, dict):
        response = httpx.Response(status, json=body)
    else:  # "<not recorded>": whatever the 423 page says
        response = httpx.Response(status, text="Locked")
    client, _server = make_client(lambda r: response, max_attempts=1)
    with pytest.raises(CryptoPayError) as info:
        await client.get_balance()
    err = info.value
    assert err.method == "getBalance"
    assert err.code == status
    if isinstance(body, dict):
        error = body["error"]
        assert err.name == error["name"]
        assert type(err) is EXPECTED[error["name"]]
        assert err.extra == {k: v for k, v in error.items() if k not in ("code", "name")}
    else:
        assert type(err) is AppSuspendedError
    assert TOKEN not in str(err) and TOKEN not in repr(err)


async def test_status_invalid_carries_allowed_statuses(make_client):
    body = {
        "ok": False,
        "error": {"code": 400, "name": "STATUS_INVALID", "allowed_statuses": ["active", "paid"]},
    }
    client, _ = make_client(lambda r: httpx.Response(400, json=body))
    with pytest.raises(InvalidParamsError) as info:
        await client.get_invoices()
    assert info.value.extra["allowed_statuses"] == ["active", "paid"]
    assert "getInvoices: 400 STATUS_INVALID" in str(info.value)


async def test_unknown_error_name_does_not_crash(make_client):
    body = {"ok": False, "error": {"code": 409, "name": "SOMETHING_NEW", "hint": 1}}
    client, _ = make_client(lambda r: httpx.Response(409, json=body))
    with pytest.raises(CryptoPayAPIError) as info:
        await client.get_me()
    assert (info.value.code, info.value.name, info.value.extra) == (
        409,
        "SOMETHING_NEW",
        {"hint": 1},
    )


async def test_malformed_error_object_uses_http_status(make_client):
    client, _ = make_client(lambda r: httpx.Response(401, json={"ok": False, "error": "nope"}))
    with pytest.raises(UnauthorizedError) as info:
        await client.get_me()
    assert info.value.code == 401


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(502, html="<html><body>502 Bad Gateway</body></html>"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"ok": True}),
        httpx.Response(200, content=b""),
        httpx.Response(500, json={"ok": False}),
    ],
)
async def test_non_envelope_bodies_are_server_errors(make_client, response):
    client, _server = make_client(lambda r: response, max_attempts=1)
    with pytest.raises(ServerError) as info:
        await client.get_balance()
    assert info.value.code == response.status_code
    assert info.value.ambiguous


async def test_html_403_page_is_an_api_error_not_a_crash(make_client):
    client, _ = make_client(lambda r: httpx.Response(403, html="<h1>Forbidden</h1>"))
    with pytest.raises(CryptoPayAPIError) as info:
        await client.get_me()
    assert (info.value.code, info.value.name) == (403, "HTTP_403")


async def test_result_that_does_not_parse_is_invalid_response(make_client):
    client, _ = make_client(
        lambda r: httpx.Response(200, json={"ok": True, "result": [{"code": 1}]})
    )
    with pytest.raises(ServerError) as info:
        await client.get_balance()
    assert info.value.name == "INVALID_RESPONSE"


async def test_rate_limited_reads_retry_after(make_client):
    client, _ = make_client(
        lambda r: httpx.Response(
            429,
            headers={"Retry-After": "7"},
            json={"ok": False, "error": {"code": 429, "name": "TOO_MANY_REQUESTS"}},
        ),
        max_attempts=1,
    )
    with pytest.raises(RateLimitedError) as info:
        await client.get_me()
    assert info.value.retry_after == 7.0
    assert not info.value.ambiguous
