"""Product photos: checking and resizing images, fetching copies, sending them on cards, and
the Mini App's resized versions (`GET /app/photos/{sku}/{size}`)."""
