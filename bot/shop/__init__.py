"""The shop's use cases: plain async functions over a ShopContext, testable without Telegram."""
