"""Images with Pillow: checked to be one, kept sendable, resized for the Mini App.

Pillow decodes in C without releasing much of the loop's time on small images; callers on
the event loop run these through `asyncio.to_thread`."""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from storage import PhotoImage

# Telegram takes photos up to 10 MB whose width + height is at most 10,000.
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
KEEP_SIDE = 2560  # larger originals are stored scaled down to this
SIZES = {"thumb": 320, "large": 1024}  # the Mini App's versions: fit in a square this big
_KEPT_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}


class NotAnImage(ValueError):
    """The bytes are not an image we can use; the message says why, for a person."""


def check_image(data: bytes) -> PhotoImage:
    """The image as the bot keeps it: JPEG or PNG as given when it is sendable as it is,
    otherwise re-encoded as a JPEG at most KEEP_SIDE on its longer side."""
    if not data:
        raise NotAnImage("the file is empty")
    if len(data) > MAX_BYTES:
        raise NotAnImage(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise NotAnImage(f"the image is too large ({width}×{height} pixels)")
                image.load()
                kind = image.format or ""
                if kind in _KEPT_FORMATS and max(width, height) <= KEEP_SIDE:
                    content, content_type = data, _KEPT_FORMATS[kind]
                else:
                    content, content_type = _jpeg(image, KEEP_SIDE), "image/jpeg"
                    with Image.open(io.BytesIO(content)) as again:
                        width, height = again.size
    except NotAnImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NotAnImage("not an image (JPEG, PNG, WebP or GIF)") from None
    except (OSError, ValueError, SyntaxError) as error:  # a truncated or corrupt file
        raise NotAnImage(f"the image cannot be read ({error})") from None
    if (
        min(width, height) < 1
        or (width + height) > 10_000
        or max(width, height) > 20 * min(width, height)
    ):
        raise NotAnImage(f"Telegram does not take a {width}×{height} photo")
    digest = hashlib.sha256(content).hexdigest()
    return PhotoImage(content, content_type, digest, width, height)


def resized(content: bytes, size: str) -> bytes:
    """A JPEG of the image fitting in SIZES[size] × SIZES[size] (never enlarged)."""
    with Image.open(io.BytesIO(content)) as image:
        return _jpeg(image, SIZES[size])


def _jpeg(image: Image.Image, side: int) -> bytes:
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "L"):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue()
