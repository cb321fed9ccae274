"""The shop's tables. Every query the repositories run has an index here."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from storage.enums import BroadcastStatus, OrderStatus, OutboxStatus, RefundStatus, StockStatus
from storage.types import Money, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Base(SQLModel, registry=registry(metadata=metadata)):
    """Base of the storage tables; they live in their own MetaData (naming convention)."""


def _enum(enum_cls: type[Enum], name: str) -> sa.Enum:
    # Stored as VARCHAR holding the lower-case value; no native PG enum, so adding a state
    # needs no migration.
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def _now_field(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime(), nullable=False, **kw)


_ZERO: dict[str, Any] = {"server_default": "0"}


def _dt_field() -> Any:
    return Field(default=None, sa_type=UTCDateTime(), nullable=True)


class Category(Base, table=True):
    __tablename__ = "categories"
    __table_args__ = (sa.Index("ix_categories_parent_position", "parent_id", "position", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_type=sa.String(64), unique=True)
    title: str = Field(sa_type=sa.String(256))
    parent_id: int | None = Field(default=None, foreign_key="categories.id", ondelete="SET NULL")
    position: int = Field(default=0)
    # {"ru": {"title": …}}: the title in other languages (PRODUCT.md §3.2)
    translations: dict[str, dict[str, str]] | None = Field(default=None, sa_type=sa.JSON())


class Product(Base, table=True):
    __tablename__ = "products"
    __table_args__ = (sa.Index("ix_products_listing", "category_id", "active", "position", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(sa_type=sa.String(64), unique=True)
    category_id: int = Field(foreign_key="categories.id", ondelete="RESTRICT")
    title: str = Field(sa_type=sa.String(256))
    description: str = Field(default="", sa_type=sa.Text())
    price: Decimal = Field(sa_type=Money())
    currency: str = Field(sa_type=sa.String(16))
    photo: str | None = Field(default=None, sa_type=sa.String(1024))
    max_per_order: int | None = Field(default=None)
    unlimited: bool = Field(default=False)
    content: str | None = Field(default=None, sa_type=sa.Text())
    active: bool = Field(default=True)
    position: int = Field(default=0)
    created_at: datetime = _now_field()
    updated_at: datetime = _now_field()
    # {"ru": {"title": …, "description": …}}: other languages' versions (PRODUCT.md §3.2)
    translations: dict[str, dict[str, str]] | None = Field(default=None, sa_type=sa.JSON())


class StockUnit(Base, table=True):
    __tablename__ = "stock_units"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "code"),
        sa.Index("ix_stock_units_pick", "product_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="products.id", ondelete="RESTRICT")
    code: str = Field(sa_type=sa.Text())
    status: StockStatus = Field(
        default=StockStatus.AVAILABLE, sa_type=_enum(StockStatus, "stock_status")
    )
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    reserved_until: datetime | None = _dt_field()
    sold_at: datetime | None = _dt_field()
    created_at: datetime = _now_field()


class Customer(Base, table=True):
    __tablename__ = "customers"
    __table_args__ = (sa.Index("ix_customers_referred_by", "referred_by"),)

    id: int | None = Field(default=None, primary_key=True)
    telegram_id: int = Field(sa_type=sa.BigInteger(), unique=True)
    username: str | None = Field(default=None, sa_type=sa.String(64))
    language: str | None = Field(default=None, sa_type=sa.String(16))  # Telegram's code
    chosen_language: str | None = Field(default=None, sa_type=sa.String(16))  # /language
    blocked_bot: bool = Field(default=False)
    created_at: datetime = _now_field()
    # The promo code the shopper applied and has not used yet (read by Buy and Checkout).
    promo_code: str | None = Field(default=None, sa_type=sa.String(64))
    updated_at: datetime = _now_field()
    # Referrals (PRODUCT.md §4.2): this customer's own code (given when first asked for),
    # who brought them (set once, when they arrived through a link, never changed), and the
    # first paid order that rewarded (or, with REFERRAL_REWARD_PERCENT=0, counted) that
    # referrer: set once, so a refunded first order does not reward a second time.
    referral_code: str | None = Field(default=None, sa_type=sa.String(16), unique=True)
    referred_by: int | None = Field(default=None, foreign_key="customers.id", ondelete="SET NULL")
    referred_at: datetime | None = _dt_field()
    referral_order_id: int | None = Field(default=None)
    referral_reward: str | None = Field(default=None, sa_type=sa.String(64))  # the code given


class Order(Base, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        sa.Index("ix_orders_customer", "customer_id", "id"),
        sa.Index("ix_orders_status", "status", "id"),
        sa.Index("ix_orders_status_expires", "status", "expires_at"),
        sa.Index("ix_orders_paid_at", "paid_at"),
        sa.Index("ix_orders_customer_abandoned", "customer_id", "abandoned_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="RESTRICT")
    total: Decimal = Field(sa_type=Money())
    currency: str = Field(sa_type=sa.String(16))
    status: OrderStatus = Field(
        default=OrderStatus.PENDING, sa_type=_enum(OrderStatus, "order_status")
    )
    invoice_id: int | None = Field(default=None, sa_type=sa.BigInteger(), unique=True)
    invoice_hash: str | None = Field(default=None, sa_type=sa.String(64))
    bot_invoice_url: str | None = Field(default=None, sa_type=sa.String(512))
    mini_app_url: str | None = Field(default=None, sa_type=sa.String(512))
    web_app_url: str | None = Field(default=None, sa_type=sa.String(512))
    expires_at: datetime = Field(sa_type=UTCDateTime(), nullable=False)
    paid_asset: str | None = Field(default=None, sa_type=sa.String(16))
    paid_amount: Decimal | None = Field(default=None, sa_type=Money())
    fee_asset: str | None = Field(default=None, sa_type=sa.String(16))
    fee_amount: Decimal | None = Field(default=None, sa_type=Money())
    paid_at: datetime | None = _dt_field()
    delivered_at: datetime | None = _dt_field()
    attention_reason: str | None = Field(default=None, sa_type=sa.Text())
    # The order message (Buy's answer, with Pay and Cancel): edited when the order is paid,
    # expired or cancelled, so that no live Pay or Cancel is left on it.
    message_chat_id: int | None = Field(default=None, sa_type=sa.BigInteger())
    message_id: int | None = Field(default=None, sa_type=sa.BigInteger())
    # When the buyer gave the order up (cancelled it, or let it expire unpaid); None for an
    # order we released ourselves (Crypto Pay down, invoice not recorded). Counted by Buy's
    # MAX_ABANDONED_PER_HOUR.
    abandoned_at: datetime | None = _dt_field()
    created_at: datetime = _now_field()
    updated_at: datetime = _now_field()
    # A promo code's discount; `total` is what is invoiced (the subtotal less this).
    discount: Decimal = Field(default=Decimal(0), sa_type=Money(), sa_column_kwargs=_ZERO)
    promo_code: str | None = Field(default=None, sa_type=sa.String(64), index=True)


class OrderLine(Base, table=True):
    __tablename__ = "order_lines"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", ondelete="CASCADE", index=True)
    product_id: int = Field(foreign_key="products.id", ondelete="RESTRICT", index=True)
    quantity: int
    unit_price: Decimal = Field(sa_type=Money())
    discount: Decimal = Field(default=Decimal(0), sa_type=Money(), sa_column_kwargs=_ZERO)


class PaymentEvent(Base, table=True):
    __tablename__ = "payment_events"
    __table_args__ = (sa.UniqueConstraint("invoice_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: int = Field(sa_type=sa.BigInteger())
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    status: str = Field(sa_type=sa.String(32))
    source: str = Field(sa_type=sa.String(16))
    body: str = Field(default="", sa_type=sa.Text())
    received_at: datetime = _now_field()


class OutboxMessage(Base, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_due", "status", "next_attempt_at", "id"),
        # A chat's earlier pending messages, asked for every claim (chat order).
        sa.Index("ix_outbox_chat", "chat_id", "status", "id"),
        # A broadcast's messages still to send, and its counts.
        sa.Index("ix_outbox_broadcast", "broadcast_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=sa.BigInteger())
    text: str = Field(default="", sa_type=sa.Text())
    reply_markup: str | None = Field(default=None, sa_type=sa.Text())  # JSON
    document_name: str | None = Field(default=None, sa_type=sa.String(256))
    document_data: bytes | None = Field(default=None, sa_type=sa.LargeBinary())
    kind: str = Field(default="message", sa_type=sa.String(32))
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    # A broadcast's message: its text is the broadcast's (composed when sent).
    broadcast_id: int | None = Field(default=None, foreign_key="broadcasts.id")
    dedupe_key: str | None = Field(default=None, sa_type=sa.String(128), unique=True)
    status: OutboxStatus = Field(
        default=OutboxStatus.PENDING, sa_type=_enum(OutboxStatus, "outbox_status")
    )
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _now_field()
    claimed_until: datetime | None = _dt_field()
    claimed_by: str | None = Field(default=None, sa_type=sa.String(64))
    sent_at: datetime | None = _dt_field()
    failed_at: datetime | None = _dt_field()
    last_error: str | None = Field(default=None, sa_type=sa.Text())
    created_at: datetime = _now_field()


class Refund(Base, table=True):
    __tablename__ = "refunds"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", ondelete="RESTRICT", index=True)
    asset: str = Field(sa_type=sa.String(16))
    amount: Decimal = Field(sa_type=Money())
    reason: str = Field(default="", sa_type=sa.Text())
    admin_id: int = Field(sa_type=sa.BigInteger())
    spend_id: str = Field(sa_type=sa.String(64), unique=True)
    status: RefundStatus = Field(
        default=RefundStatus.SENDING, sa_type=_enum(RefundStatus, "refund_status"), index=True
    )
    transfer_id: int | None = Field(default=None, sa_type=sa.BigInteger())
    error: str | None = Field(default=None, sa_type=sa.Text())
    created_at: datetime = _now_field()
    updated_at: datetime = _now_field()


class AuditEntry(Base, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    admin_id: int = Field(sa_type=sa.BigInteger(), index=True)
    action: str = Field(sa_type=sa.String(64))
    details: str = Field(default="", sa_type=sa.Text())
    result: str = Field(default="", sa_type=sa.String(256))
    created_at: datetime = _now_field(index=True)


class CartItem(Base, table=True):
    """A line of a shopper's cart, kept server-side (restarts, replicas, the Mini App).
    `unit_price` is the price when the line was added: a repricing since is shown."""

    __tablename__ = "cart_items"
    __table_args__ = (sa.UniqueConstraint("customer_id", "product_id"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="CASCADE")
    product_id: int = Field(foreign_key="products.id", ondelete="CASCADE", index=True)
    quantity: int
    unit_price: Decimal = Field(sa_type=Money())
    added_at: datetime = _now_field()


class ProductPhoto(Base, table=True):
    """The bot's own copy of a product's photo (several replicas share it through the
    database). `source` is the `products.photo` it was made from; `telegram_file_id` is the id
    Telegram gave our first upload of exactly this `digest`, reused for every later send."""

    __tablename__ = "product_photos"

    product_id: int = Field(primary_key=True, foreign_key="products.id", ondelete="CASCADE")
    source: str = Field(sa_type=sa.String(1024))
    content: bytes = Field(sa_type=sa.LargeBinary())
    content_type: str = Field(sa_type=sa.String(32))
    digest: str = Field(sa_type=sa.String(64))  # SHA-256 of content, hex
    width: int
    height: int
    telegram_file_id: str | None = Field(default=None, sa_type=sa.String(256))
    updated_at: datetime = _now_field()


class PhotoRendition(Base, table=True):
    """A resized JPEG of a product photo for the Mini App, made once per `digest` and size."""

    __tablename__ = "photo_renditions"

    product_id: int = Field(
        primary_key=True, foreign_key="product_photos.product_id", ondelete="CASCADE"
    )
    size: str = Field(primary_key=True, sa_type=sa.String(16))
    digest: str = Field(sa_type=sa.String(64))  # the photo's digest it was made from
    content: bytes = Field(sa_type=sa.LargeBinary())
    created_at: datetime = _now_field()


class Broadcast(Base, table=True):
    """An admin's message to many customers. Its recipients are enqueued into the outbox a
    page at a time (customer ids up to `last_customer_id`, past `cursor`); the replica that
    holds the lease (`owner` until `owner_until`) feeds it and sends its messages."""

    __tablename__ = "broadcasts"
    __table_args__ = (sa.Index("ix_broadcasts_status", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    admin_chat_id: int = Field(sa_type=sa.BigInteger())
    text: str = Field(default="", sa_type=sa.Text())  # HTML; a photo's caption
    photo: str | None = Field(default=None, sa_type=sa.String(256))  # Telegram file_id
    reply_markup: str | None = Field(default=None, sa_type=sa.Text())  # JSON
    buyers_only: bool = Field(default=False)
    status: BroadcastStatus = Field(
        default=BroadcastStatus.RUNNING, sa_type=_enum(BroadcastStatus, "broadcast_status")
    )
    total: int = Field(default=0)  # the audience when it was sent
    last_customer_id: int = Field(default=0)
    cursor: int = Field(default=0)  # the last customer id enqueued
    enqueued: int = Field(default=0)
    progress_message_id: int | None = Field(default=None, sa_type=sa.BigInteger())
    progress_at: datetime | None = _dt_field()
    owner: str | None = Field(default=None, sa_type=sa.String(64))
    owner_until: datetime | None = _dt_field()
    created_at: datetime = _now_field()
    finished_at: datetime | None = _dt_field()


# Set the mapped classes up now rather than at the first ORM query: read-only snapshots
# (storage._sql.snapshot) read their attributes through the mapping, and a process whose
# first work is a settlement (Core statements only) would otherwise find it unset.
sa.orm.configure_mappers()
