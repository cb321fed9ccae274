"""Turning a ``result`` into models, with a fast path straight from the response bytes."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import ServerError

T = TypeVar("T")


class _Ok(BaseModel, Generic[T]):
    ok: Literal[True]
    result: T


class _Items(BaseModel, Generic[T]):
    items: T


class Parser(Generic[T]):
    """Parses the result of one method: ``T`` itself, or ``{"items": T}`` when ``items``."""

    def __init__(self, tp: Any, *, items: bool = False) -> None:
        self._items = items
        self._python: TypeAdapter[T] = TypeAdapter(tp)
        inner: Any = _Items[tp] if items else tp
        self._envelope: TypeAdapter[Any] = TypeAdapter(_Ok[inner])

    def from_json(self, content: bytes) -> T | None:
        """One pass over the bytes of a success envelope; ``None`` when it is not one."""
        try:
            envelope = self._envelope.validate_json(content)
        except ValidationError:
            return None
        result = envelope.result
        return result.items if self._items else result

    def from_result(self, result: Any, method: str) -> T:
        if self._items and isinstance(result, dict):
            result = result.get("items", [])
        try:
            return self._python.validate_python(result)
        except ValidationError as exc:
            # The call did succeed on the server; only its answer is unreadable.
            detail = {"detail": str(exc)[:300]}
            raise ServerError(200, "INVALID_RESPONSE", detail, method) from None
