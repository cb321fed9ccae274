"""What the chat shows: the texts (one module per language), keyboards, the screens built
from the shop's data, and the outbox's messages composed when they are sent."""
