"""Poster storage: Cloudinary when it is configured, else a local folder served by the app.

``read_poster_request()`` takes the image out of an upload (multipart or JSON base64)
under MAX_POSTER_BYTES; ``store_poster(data)`` checks that the bytes are a whole JPEG, PNG, WebP or GIF image
(at most MAX_POSTER_PIXELS, no HTML where a browser would find it) and stores them, returning
``{"url", "poster_url"}``; ``discard_poster(url)`` removes
an image this app put on Cloudinary once nothing uses it any more. Local files are named
by the SHA-256 of their content, so the same image is stored once and never changes.
"""

import base64
import binascii
import errno
import hashlib
import logging
import os
import re
import struct
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as DeleteTimeout
from urllib.parse import parse_qsl, unquote, urlsplit

import cloudinary.uploader
import cloudinary.utils
from cloudinary.exceptions import Error as CloudinaryError
from flask import current_app, request, url_for
from flask_smorest import abort

from errors import Refused
from models import db

log = logging.getLogger("cinema.posters")

CLOUDINARY_FOLDER = "cinema/posters"
# What GET /movies shows well: a 2:3 poster, format and quality picked per browser.
POSTER_TRANSFORMATION = {
    "crop": "fill",
    "width": 300,
    "height": 450,
    "fetch_format": "auto",
    "quality": "auto",
}
# Extension -> content type of the formats accepted.
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
LOCAL_NAME_RE = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp|gif)\Z")
# The endpoint in app.py that serves local posters.
LOCAL_ENDPOINT = "movies.get_poster"
# Deletions run here so that a request can stop waiting after CLOUDINARY_DELETE_TIMEOUT.
_deleter = ThreadPoolExecutor(max_workers=2, thread_name_prefix="poster-delete")


class NotAnImage(ValueError):
    """The bytes are not a complete JPEG, PNG, WebP or GIF image, or not one we may serve."""


class ImageHostError(RuntimeError):
    """The image host refused the request or could not be reached."""


class StorageFull(Refused):
    """The poster folder cannot take the file (disk full, over quota, read-only); nothing changed."""

    status = 503


# What a full or read-only poster folder fails with; any other OSError is a bug (500).
STORAGE_FULL_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


# ---- checking the bytes -----------------------------------------------------------

# Tags that make a browser, or an HTML parser handed the file by mistake, treat it as
# a page. Searched where text can hide: the first bytes (what browsers sniff), the
# comment and metadata blocks, and anything after the image's end. Compressed pixel
# data is not searched: short tags turn up there by chance.
MARKUP_RE = re.compile(rb"<(?:html|script|!doctype|svg|body|iframe)", re.IGNORECASE)
SNIFFED_BYTES = 1024


def check_image(data: bytes) -> str:
    """The extension of a whole image, of a sane size, that no browser would take for HTML.

    Raises NotAnImage otherwise.
    """
    extension = image_extension(data)
    width, height, texts = IMAGE_READERS[extension](data)
    if not width or not height:
        raise NotAnImage("The image is damaged (its header says it has no pixels).")
    limit = current_app.config["MAX_POSTER_PIXELS"]
    if width * height > limit:
        raise NotAnImage(f"The image claims {width}x{height} pixels; at most {limit} pixels are allowed.")
    if any(MARKUP_RE.search(text) for text in (data[:SNIFFED_BYTES], *texts)):
        raise NotAnImage("The image holds HTML markup, which a browser could run as a page.")
    return extension


def image_extension(data: bytes) -> str:
    """The extension for ``data`` judged by its first bytes, or NotAnImage."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    raise NotAnImage("The file is not a JPEG, PNG, WebP or GIF image.")


# Each reader checks that the image is whole and returns (width, height, text blocks).

# A marker: 0xFF then a code; 0x00 after 0xFF is an escaped data byte, 0xD0-0xD7 are
# restart markers inside pixel data, and further 0xFF bytes are fill.
JPEG_MARKER_RE = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
# Frame headers (SOF0-SOF15, except DHT, JPG and DAC), which carry the size.
JPEG_FRAME_CODES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_TEXT_CODES = frozenset(range(0xE0, 0xF0)) | {0xFE}  # APP0-APP15, COM
JPEG_SOS, JPEG_EOI = 0xDA, 0xD9


def read_jpeg(data: bytes) -> tuple[int, int, list[bytes]]:
    """Walk the segments: the size from the frame header, text from APPn and COM."""
    # Some encoders pad after the end-of-image marker; the marker must be there.
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise NotAnImage("The JPEG image is truncated (no end-of-image marker).")
    damaged = NotAnImage("The JPEG image is truncated or damaged.")
    size, texts, position, in_scan = None, [], 2, False
    while True:
        marker = JPEG_MARKER_RE.search(data, position)
        if marker is None:
            raise damaged
        if not in_scan and marker.start() > position:  # bytes between segments, which decoders skip
            texts.append(data[position : marker.start()])
        code, start = data[marker.end() - 1], marker.end()
        if code == JPEG_EOI:
            break
        if code in (0x01, 0xD8):  # no length follows
            position, in_scan = start, False
            continue
        if start + 2 > len(data):
            raise damaged
        (length,) = struct.unpack(">H", data[start : start + 2])
        segment = data[start + 2 : start + length]
        if length < 2 or len(segment) != length - 2:
            raise damaged
        if code in JPEG_FRAME_CODES and size is None:
            if len(segment) < 5:
                raise damaged
            height, width = struct.unpack(">xHH", segment[:5])
            size = (width, height)
        elif code in JPEG_TEXT_CODES:
            texts.append(segment)
        position, in_scan = start + length, code == JPEG_SOS
    if size is None:
        raise damaged
    return *size, [*texts, data[marker.end() :]]


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Walk the chunks: each whole with a matching CRC, IHDR first, up to IEND."""
    position, size, texts = 8, None, []
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data) or (size is None and kind != b"IHDR"):
            break
        body = data[position + 4 : end - 4]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(body) != crc:
            raise NotAnImage("The PNG image is damaged (a chunk checksum does not match).")
        if kind == b"IHDR" and size is None:
            if length < 8:
                break
            size = struct.unpack(">II", body[4:12])
        elif kind == b"IEND":
            return *size, [*texts, data[end:]]
        elif kind not in (b"IDAT", b"fdAT"):  # text, colour profiles, metadata
            texts.append(body)
        position = end
    raise NotAnImage("The PNG image is truncated or damaged.")


WEBP_IMAGE_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ANMF"})  # compressed pixels


def read_webp(data: bytes) -> tuple[int, int, list[bytes]]:
    """Walk the RIFF chunks: the size from the first image header, text from the others."""
    damaged = NotAnImage("The WebP image is truncated or damaged.")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = riff_size + 8
    if len(data) < end or data[12:16] not in (b"VP8 ", b"VP8L", b"VP8X"):
        raise damaged
    position, size, texts = 12, None, []
    while position + 8 <= end:
        kind, length = struct.unpack("<4sI", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if position + 8 + length > end:
            raise damaged
        if size is None:
            size = webp_size(kind, body)
        if kind not in WEBP_IMAGE_CHUNKS:
            texts.append(body)
        position += 8 + length + (length & 1)  # chunks are padded to an even length
    return *size, [*texts, data[end:]]


def webp_size(kind: bytes, body: bytes) -> tuple[int, int]:
    """Width and height from a VP8X (canvas), VP8L (lossless) or VP8 (lossy) header."""
    if kind == b"VP8X" and len(body) >= 10:
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        (bits,) = struct.unpack("<I", body[1:5])
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    if kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    raise NotAnImage("The WebP image is damaged (no image header).")


def read_gif(data: bytes) -> tuple[int, int, list[bytes]]:
    """Walk the blocks: the size from the logical screen, text from the extensions."""
    truncated = NotAnImage("The GIF image is truncated (no trailer).")
    if len(data) < 14 or not data.rstrip(b"\x00").endswith(b"\x3b"):
        raise truncated
    width, height, flags = struct.unpack("<HHB", data[6:11])
    position, texts = 13 + gif_colour_table_size(flags), []
    while position < len(data) and data[position] != 0x3B:
        block = data[position]
        if block == 0x21:  # extension: a label, then sub-blocks (comments, application data)
            end = gif_sub_blocks_end(data, position + 2)
            texts.append(data[position:end])
        elif block == 0x2C and position + 10 <= len(data):  # an image: its descriptor first
            colours = gif_colour_table_size(data[position + 9])
            end = gif_sub_blocks_end(data, position + 10 + colours + 1)  # after the LZW code size
        else:
            raise NotAnImage("The GIF image is truncated or damaged.")
        position = end
    if position >= len(data):
        raise truncated
    return width, height, [*texts, data[position + 1 :]]


def gif_colour_table_size(flags: int) -> int:
    return 3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0


def gif_sub_blocks_end(data: bytes, position: int) -> int:
    """Where a chain of sub-blocks (each a length byte and that many bytes) ends."""
    while position < len(data) and data[position]:
        position += 1 + data[position]
    return position + 1


IMAGE_READERS = {"jpg": read_jpeg, "png": read_png, "webp": read_webp, "gif": read_gif}


# ---- storing ----------------------------------------------------------------------


def store_poster(data: bytes) -> dict:
    """Store an image and return its ``url`` and a poster-size ``poster_url``.

    Raises NotAnImage for anything but a whole JPEG, PNG, WebP or GIF that passes
    check_image, ImageHostError when Cloudinary fails, and StorageFull when the
    local folder cannot take the file.
    """
    extension = check_image(data)
    name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
    options = current_app.config["CLOUDINARY"]
    if options:
        return upload_to_cloudinary(data, name, options)
    store_locally(data, name)
    # Every user is shown this URL: it comes from the settings, never from the
    # uploading request's Host header.
    url = current_app.config["PUBLIC_URL"] + url_for(LOCAL_ENDPOINT, name=name)
    return {"url": url, "poster_url": url}


def upload_to_cloudinary(data: bytes, name: str, options: dict) -> dict:
    try:
        result = cloudinary.uploader.upload(
            data,
            folder=CLOUDINARY_FOLDER,
            resource_type="image",
            filename=name,
            timeout=current_app.config["CLOUDINARY_TIMEOUT"],
            **options,
        )
        public_id, secure_url = result["public_id"], result["secure_url"]
    except (CloudinaryError, KeyError, TypeError) as error:
        log.warning("Cloudinary upload failed: %r", error)
        raise ImageHostError("The image host did not accept the poster; nothing was changed.") from None
    poster_url, _ = cloudinary.utils.cloudinary_url(
        public_id,
        version=result.get("version"),
        secure=True,
        cloud_name=options["cloud_name"],
        **POSTER_TRANSFORMATION,
    )
    return {"url": secure_url, "poster_url": poster_url}


def discard_poster(url: str | None) -> None:
    """Destroy an image this app uploaded to Cloudinary; never raises.

    The request waits at most CLOUDINARY_DELETE_TIMEOUT: the change is committed
    already and nothing in the answer depends on the deletion. Local files are
    kept: they are named by content and may be shared by movies.
    """
    config = current_app.config
    options = config["CLOUDINARY"]
    public_id = cloudinary_public_id(url, options) if options and url else None
    if public_id is None:
        return
    wait = config["CLOUDINARY_DELETE_TIMEOUT"]
    future = _deleter.submit(destroy_on_cloudinary, public_id, options, config["CLOUDINARY_TIMEOUT"])
    try:
        future.result(timeout=wait)
    except DeleteTimeout:
        if future.cancel():  # still queued behind other slow deletions: dropped
            log.warning("Dropped destroying poster %s: Cloudinary is slow", public_id)
        else:  # goes on in the background, up to CLOUDINARY_TIMEOUT, and logs how it went
            log.warning("Destroying poster %s takes over %s s; not waiting for it", public_id, wait)


def destroy_on_cloudinary(public_id: str, options: dict, timeout: float) -> None:
    """Destroy one image and log how it went; never raises."""
    try:
        result = cloudinary.uploader.destroy(public_id, invalidate=True, timeout=timeout, **options)
        log.info("Destroyed poster %s on Cloudinary: %s", public_id, result.get("result"))
    except CloudinaryError as error:
        log.warning("Could not destroy poster %s on Cloudinary: %r", public_id, error)
    except Exception:
        log.exception("Could not destroy poster %s on Cloudinary", public_id)


def cloudinary_public_id(url: str, options: dict) -> str | None:
    """``cinema/posters/abc`` from a delivery URL of our cloud and folder, else None."""
    pattern = (
        r"^https?://[^/]+/" + re.escape(options["cloud_name"]) + r"/image/upload/"
        r"(?:v\d+/)?(" + re.escape(CLOUDINARY_FOLDER) + r"/[^/.?#]+)(?:\.\w+)?\Z"
    )
    match = re.match(pattern, url)
    return match.group(1) if match else None


def local_folder() -> str:
    return current_app.config["POSTER_FOLDER"] or os.path.join(current_app.instance_path, "posters")


def store_locally(data: bytes, name: str) -> None:
    folder = local_folder()
    path = os.path.join(folder, name)
    try:
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(path):
            return  # same content, same name: already stored
        # Written aside and renamed, so a reader never sees half a file.
        descriptor, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as error:
        if error.errno not in STORAGE_FULL_ERRORS:
            raise
        log.error("Cannot store poster %s in %s: %s", name, folder, error)
        raise StorageFull("The poster storage is full or read-only; nothing was changed.") from None


def local_poster(name: str) -> tuple[str, str] | None:
    """(folder, content type) for a stored local poster name, or None."""
    match = LOCAL_NAME_RE.match(name)
    folder = local_folder()
    if not match or not os.path.isfile(os.path.join(folder, name)):
        return None
    return folder, CONTENT_TYPES[match.group(1)]


# ---- settings ---------------------------------------------------------------------


def cloudinary_settings(config) -> dict | None:
    """Per-call Cloudinary options from CLOUDINARY_URL or the three CLOUDINARY_* settings."""
    if config.get("CLOUDINARY_URL"):
        parts = urlsplit(config["CLOUDINARY_URL"])
        credentials, _, cloud_name = parts.netloc.rpartition("@")
        api_key, _, api_secret = credentials.partition(":")
        if parts.scheme != "cloudinary" or not (cloud_name and api_key and api_secret):
            raise RuntimeError(
                "CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
            )
        options = dict(parse_qsl(parts.query))
        options.update(cloud_name=cloud_name, api_key=unquote(api_key), api_secret=unquote(api_secret))
    elif config.get("CLOUDINARY_CLOUD_NAME"):
        options = {
            "cloud_name": config["CLOUDINARY_CLOUD_NAME"],
            "api_key": config.get("CLOUDINARY_API_KEY"),
            "api_secret": config.get("CLOUDINARY_API_SECRET"),
        }
        if not (options["api_key"] and options["api_secret"]):
            raise RuntimeError("CLOUDINARY_CLOUD_NAME needs CLOUDINARY_API_KEY and CLOUDINARY_API_SECRET")
    else:
        return None
    if config.get("CLOUDINARY_UPLOAD_PREFIX"):
        options["upload_prefix"] = config["CLOUDINARY_UPLOAD_PREFIX"]
    return options


# ---- reading an upload ------------------------------------------------------------

# Room for the multipart framing and the other fields around the image itself.
POSTER_BODY_ALLOWANCE = 64 * 1024


def read_poster_request(movie_id_allowed=True) -> tuple[bytes, int | None]:
    """The image bytes and optional movie id, from a multipart or JSON body."""
    # Nothing below may hold SQLite's write lock (taken by the admin check) while
    # a large body arrives or the image host answers.
    db.session.rollback()
    limit = current_app.config["MAX_POSTER_BYTES"]
    too_large = f"The image is larger than {limit} bytes."
    if request.mimetype == "multipart/form-data":
        request.max_content_length = limit + POSTER_BODY_ALLOWANCE
        upload = request.files.get("image")
        if upload is None:
            upload = request.files.get("file")
        if upload is None:
            abort(400, message="Send the image in the multipart field 'image' (or 'file').",
                  errors={"image": ["Missing file."]})
        data = upload.stream.read(limit + 1)
        movie_id = request.form.get("movie_id")
    elif request.is_json:
        body_limit = base64_length(limit) + POSTER_BODY_ALLOWANCE
        # A streamed body (no Content-Length) is cut at the limit, not refused:
        # allow one byte more, and a body that reaches it is too large.
        request.max_content_length = body_limit + 1
        if len(request.get_data()) > body_limit:
            abort(413, message=too_large)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, message="The request body must be a JSON object with an 'image' field.")
        data, movie_id = decode_image(body.get("image"), limit), body.get("movie_id")
    else:
        abort(415, message="Send the image as multipart/form-data or as JSON with base64.")
    if len(data) > limit:
        abort(413, message=too_large)
    if not data:
        abort(400, message="The image is empty.", errors={"image": ["Empty file."]})
    if movie_id in (None, "") or not movie_id_allowed:
        return data, None
    if isinstance(movie_id, str) and movie_id.isdecimal():
        movie_id = int(movie_id)
    if isinstance(movie_id, bool) or not isinstance(movie_id, int) or not 1 <= movie_id < 2**31:
        abort(400, message="movie_id must be a movie's id.", errors={"movie_id": ["Not a valid id."]})
    return data, movie_id


def base64_length(size: int) -> int:
    """How long ``size`` bytes are in base64: 4 characters for every 3 bytes begun."""
    return -(-size // 3) * 4


def decode_image(image, limit: int) -> bytes:
    """The bytes of a JSON ``image``: base64, or a base64 ``data:`` URL."""
    if not isinstance(image, str) or not image.strip():
        abort(400, message="'image' must be the image as base64 or a data: URL.",
              errors={"image": ["Missing or not a string."]})
    if image.startswith("data:"):
        header, _, image = image.partition(",")
        if not header.endswith(";base64"):
            abort(400, message="The data: URL must be base64 encoded.", errors={"image": ["Not base64."]})
    encoded = "".join(image.split())
    if len(encoded) > base64_length(limit):
        abort(413, message=f"The image is larger than {limit} bytes.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        abort(400, message="'image' is not valid base64.", errors={"image": ["Not valid base64."]})
