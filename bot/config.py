"""Typed configuration: environment variables (and `.env`), as PRODUCT.md §2.1 names them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from decimal import Decimal
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CRYPTOPAY_URLS = {
    "mainnet": "https://pay.crypt.bot/api",
    "testnet": "https://testnet-pay.crypt.bot/api",
}

_BOT_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_ASSET_RE = re.compile(r"^[A-Z0-9]{2,12}$")
_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SUPPORT_USERNAME_RE = re.compile(r"^@[A-Za-z0-9_]{5,32}$")
# RFC 6750's token characters; long enough not to be guessed.
_METRICS_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]{16,256}$")
LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))


S = TypeVar("S", bound=BaseSettings)


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_URL_FIELDS = frozenset({"database_url", "redis_url"})


def mask_url(url: str) -> str:
    """The URL with its password (userinfo or a `password=` query value) shown as ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}"
        query = parts.query
        if "password" in query.lower():
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*"
            )
        if (netloc, query) == (parts.netloc, parts.query):
            return url
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:  # not a URL we can take apart: show none of it
        return "***"


class StoreSettings(BaseSettings):
    """What the database commands need (`db upgrade`, `catalog …`): no tokens required."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    database_url: str = Field("sqlite+aiosqlite:///shop.db", alias="DATABASE_URL")
    shop_currency: str = Field("USD", alias="SHOP_CURRENCY")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    auto_migrate: bool = Field(True, alias="AUTO_MIGRATE")
    # The language of customers whose Telegram language the shop does not speak (en, ru).
    default_language: Literal["en", "ru"] = Field("en", alias="DEFAULT_LANGUAGE")

    @field_validator("default_language", mode="before")
    @classmethod
    def _lower_language(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() show the tokens as SecretStr does; the URLs' passwords likewise.
        for name, value in super().__repr_args__():
            if name in _URL_FIELDS and isinstance(value, str):
                yield name, mask_url(value)
            else:
                yield name, value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("shop_currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            if not _ASSET_RE.match(value):
                raise ValueError("must be a currency code such as USD or EUR")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)


class Settings(StoreSettings):
    """Everything the shop needs to know about its surroundings; built in the composition root."""

    bot_token: SecretStr = Field(alias="BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_URL")
    cryptopay_token: SecretStr = Field(alias="CRYPTOPAY_TOKEN")
    cryptopay_network: Literal["mainnet", "testnet"] = Field("mainnet", alias="CRYPTOPAY_NETWORK")
    cryptopay_api_url: str | None = Field(None, alias="CRYPTOPAY_API_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(frozenset(), alias="ADMIN_IDS")
    low_stock_threshold: int = Field(3, ge=0, alias="LOW_STOCK_THRESHOLD")
    # A referrer's code for a referred customer's first paid order, in percent; 0 counts only.
    referral_reward_percent: Decimal = Field(
        Decimal(10), ge=0, lt=100, decimal_places=2, alias="REFERRAL_REWARD_PERCENT"
    )
    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(8080, ge=0, le=65535, alias="PORT")
    cryptopay_webhook_path: str = Field("/cryptopay/webhook", alias="CRYPTOPAY_WEBHOOK_PATH")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    # Who may read /metrics: a peer in these networks, or a request with the bearer token.
    metrics_allow: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        LOOPBACK, alias="METRICS_ALLOW"
    )
    metrics_token: SecretStr | None = Field(None, alias="METRICS_TOKEN")
    # The database gauges of /metrics are read at most once per this many seconds.
    metrics_cache_seconds: float = Field(15.0, ge=0, le=3600, alias="METRICS_CACHE_SECONDS")
    accepted_assets: Annotated[tuple[str, ...], NoDecode] = Field(
        ("USDT", "TON", "BTC"), alias="ACCEPTED_ASSETS"
    )
    # Crypto Pay's whole expires_in range; under a minute is legal (tests, demos) but warned of.
    invoice_ttl_seconds: int = Field(900, ge=1, le=2_678_400, alias="INVOICE_TTL_SECONDS")
    reconcile_interval_seconds: int = Field(30, ge=1, alias="RECONCILE_INTERVAL_SECONDS")
    rates_refresh_seconds: int = Field(60, ge=1, alias="RATES_REFRESH_SECONDS")
    telegram_rate_limit: float = Field(30.0, gt=0, alias="TELEGRAM_RATE_LIMIT")
    support_contact: str | None = Field(None, alias="SUPPORT_CONTACT")

    # Not in the fixed table: knobs a shop owner may want, with sensible defaults.
    max_unpaid_orders: int = Field(3, ge=1, alias="MAX_UNPAID_ORDERS")
    # In the fixed table: anti-hoarding caps per shopper (Buy refuses past them).
    max_reserved_units: int = Field(10, ge=1, alias="MAX_RESERVED_UNITS")
    max_abandoned_per_hour: int = Field(5, ge=1, alias="MAX_ABANDONED_PER_HOUR")
    rates_max_age_seconds: int = Field(900, ge=1, alias="RATES_MAX_AGE_SECONDS")
    # Unset: no client-side cap (Crypto Pay documents none); a 429 still slows the client down.
    cryptopay_rate_limit: float | None = Field(None, gt=0, alias="CRYPTOPAY_RATE_LIMIT")
    cryptopay_timeout_seconds: float = Field(10.0, gt=0, alias="CRYPTOPAY_TIMEOUT_SECONDS")
    # The Mini App storefront (PRODUCT.md §3.3): unset, the chat shop is all there is.
    webapp_url: str | None = Field(None, alias="WEBAPP_URL")
    webapp_init_max_age_seconds: int = Field(86400, ge=1, alias="WEBAPP_INIT_MAX_AGE_SECONDS")
    # Where the storefront loads Telegram's script from (a local stand-in for demos); the
    # page's Content-Security-Policy allows this origin and no other.
    webapp_script_url: str = Field(
        "https://telegram.org/js/telegram-web-app.js", alias="WEBAPP_SCRIPT_URL"
    )

    @field_validator("bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr) -> SecretStr:
        if not _BOT_TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("must look like 123456789:AA… (the token @BotFather gave you)")
        return value

    @field_validator("cryptopay_token")
    @classmethod
    def _cryptopay_token_shape(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if not secret or any(ch.isspace() for ch in secret) or ":" not in secret:
            raise ValueError("must look like 12345:AA… (the token of your Crypto Pay app)")
        return value

    @field_validator("cryptopay_network", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("accepted_assets", mode="before")
    @classmethod
    def _parse_assets(cls, value: Any) -> Any:
        assets = _split_csv(value)
        if isinstance(assets, list | tuple):
            assets = [str(asset).upper() for asset in assets]
            bad = [asset for asset in assets if not _ASSET_RE.match(asset)]
            if bad or not assets:
                raise ValueError("must be a comma-separated list of asset codes, e.g. USDT,TON,BTC")
        return assets

    @field_validator("cryptopay_webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(ch.isspace() for ch in value):
            raise ValueError("must be a URL path starting with /")
        return value

    @field_validator("telegram_api_url", "cryptopay_api_url", "telegram_webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("webapp_url", "webapp_script_url", mode="before")
    @classmethod
    def _webapp_url(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip().rstrip("/")
        if not value:
            return None
        parts = urlsplit(value)
        local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
        if not (parts.scheme == "https" or local) or not parts.hostname:
            raise ValueError("must be an https:// URL (Telegram opens Mini Apps over https only)")
        return value

    @field_validator("support_contact", mode="before")
    @classmethod
    def _support_contact(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None
        url = (
            value.startswith("https://")
            and len(value) > 8
            and not any(ch.isspace() for ch in value)
        )
        if not (url or _SUPPORT_USERNAME_RE.match(value)):
            raise ValueError(
                "must be a Telegram @username (5-32 letters, digits or _) or an https:// URL"
            )
        return value

    @field_validator("redis_url", "cryptopay_rate_limit", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not _WEBHOOK_SECRET_RE.match(value.get_secret_value()):
            raise ValueError("may hold only A-Z, a-z, 0-9, _ and -, at most 256 characters")
        return value

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        parts = _split_csv(value)
        if not isinstance(parts, list):
            return value
        networks = []
        for part in parts:
            try:
                networks.append(ip_network(part))
            except ValueError:
                raise ValueError(
                    f"{part!r} is not a network such as 127.0.0.0/8, 10.1.2.3 or ::1 "
                    "(host bits must be zero: 10.0.0.0/8, not 10.0.0.5/8)"
                ) from None
        return networks

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not _METRICS_TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("must be 16-256 of A-Z, a-z, 0-9 and -._~+/=")
        return value

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.cryptopay_api_url is None:
            self.cryptopay_api_url = CRYPTOPAY_URLS[self.cryptopay_network]
        if self.telegram_api_url is None:
            self.telegram_api_url = "https://api.telegram.org"
        if self.telegram_webhook_secret is None:
            digest = hashlib.sha256(
                b"telegram-webhook:" + self.bot_token.get_secret_value().encode()
            ).hexdigest()
            self.telegram_webhook_secret = SecretStr(digest)
        return self

    def warnings(self) -> list[str]:
        """Legal but surprising choices, one sentence each, for the log at start-up."""
        notes = []
        if self.invoice_ttl_seconds < 60:
            notes.append(
                f"INVOICE_TTL_SECONDS={self.invoice_ttl_seconds}: buyers get under a minute to "
                "pay each invoice (the default is 900)"
            )
        return notes

    @property
    def cryptopay_base_url(self) -> str:
        assert self.cryptopay_api_url is not None  # set by _derive
        return self.cryptopay_api_url

    @property
    def webhook_secret(self) -> str:
        assert self.telegram_webhook_secret is not None  # set by _derive
        return self.telegram_webhook_secret.get_secret_value()


def normalize_database_url(value: str) -> str:
    """Accept the URLs platforms hand out (`postgres://`, `sqlite:///`); pick the async driver."""
    value = value.strip()
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+asyncpg://" + value[len(prefix) :]
    if value.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + value[len("sqlite:///") :]
    if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ValueError("must be a sqlite+aiosqlite:/// or postgresql+asyncpg:// URL")
    return value


class ConfigError(Exception):
    """A configuration problem, worded for the person who runs the bot."""


_FIELD_TO_ENV = {name: field.alias or name.upper() for name, field in Settings.model_fields.items()}


def describe_validation_error(error: ValidationError) -> str:
    """One sentence naming every variable at fault; never the values (they may be secrets)."""
    missing: list[str] = []
    invalid: list[str] = []
    for item in error.errors():
        loc = item.get("loc") or ("?",)
        env = _FIELD_TO_ENV.get(str(loc[0]), str(loc[0]).upper())
        if item.get("type") == "missing":
            missing.append(env)
        else:
            reason = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            invalid.append(f"{env} ({reason})")
    parts = []
    if missing:
        parts.append(f"{_join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
    if invalid:
        parts.append(f"{_join(invalid)} {'is' if len(invalid) == 1 else 'are'} invalid")
    fix = "set it" if len(missing) + len(invalid) == 1 else "set them"
    return (
        f"Configuration error: {' and '.join(parts)}; "
        f"{fix} in the environment or in .env (see .env.example)."
    )


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's report into a `ConfigError` with one clear sentence."""
    return _load(Settings, overrides)


def load_store_settings(**overrides: Any) -> StoreSettings:
    """The settings the database commands need; the tokens may be absent."""
    return _load(StoreSettings, overrides)


def _load(cls: type[S], overrides: dict[str, Any]) -> S:
    try:
        return cls(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
