"""The long-running machinery: the outbox worker and Telegram's pace, retries and metrics,
and the state replicas share through Redis (Buy guard, rates, refund confirmations)."""
