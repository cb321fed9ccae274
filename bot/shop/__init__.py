"""The shop's use cases: plain async functions over a ShopContext and plain values (never
aiogram's types: the Mini App's HTTP API calls them too), testable without Telegram."""
