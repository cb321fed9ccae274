"""Everything a shopper or an admin reads, one module per language (English for now)."""

from bot.screens.texts import en

texts = en

__all__ = ["en", "texts"]
