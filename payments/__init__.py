"""Crypto Pay (@CryptoBot) for the shop: client, models, errors, webhook check, rates cache.

Knows nothing of Telegram or the database.
"""

from .client import MAINNET_API_URL, TESTNET_API_URL, CryptoPayClient
from .errors import (
    AppSuspendedError,
    CryptoPayAPIError,
    CryptoPayError,
    CryptoPayTimeoutError,
    CryptoPayTransportError,
    InvalidParamsError,
    MethodDisabledError,
    MethodNotFoundError,
    RateLimitedError,
    ServerError,
    UnauthorizedError,
)
from .models import (
    App,
    AppStats,
    Balance,
    Check,
    Currency,
    ExchangeRate,
    Invoice,
    Transfer,
    Update,
    decimal_to_wire,
)
from .rates import ExchangeRateCache, RatesSnapshot
from .retry import RetryPolicy
from .webhook import SIGNATURE_HEADER, InvalidUpdateError, parse_update, verify_signature

__all__ = [
    "MAINNET_API_URL",
    "SIGNATURE_HEADER",
    "TESTNET_API_URL",
    "App",
    "AppStats",
    "AppSuspendedError",
    "Balance",
    "Check",
    "CryptoPayAPIError",
    "CryptoPayClient",
    "CryptoPayError",
    "CryptoPayTimeoutError",
    "CryptoPayTransportError",
    "Currency",
    "ExchangeRate",
    "ExchangeRateCache",
    "InvalidParamsError",
    "InvalidUpdateError",
    "Invoice",
    "MethodDisabledError",
    "MethodNotFoundError",
    "RateLimitedError",
    "RatesSnapshot",
    "RetryPolicy",
    "ServerError",
    "Transfer",
    "UnauthorizedError",
    "Update",
    "decimal_to_wire",
    "parse_update",
    "verify_signature",
]
