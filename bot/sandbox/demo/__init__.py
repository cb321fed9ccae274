"""`make demo` / `python -m bot demo`: the whole shop in the browser, with no tokens.

The real shop (bot.app.run_bot) runs against the stand-ins of Telegram and Crypto Pay on
127.0.0.1; a small page (static/) plays Telegram for a shopper and an admin. See
runner.py for the wiring, server.py for the page's API, settings.py for the isolation.
"""
