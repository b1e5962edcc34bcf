"""Poster uploads: checked by content, stored locally or on (a fake) Cloudinary."""

import base64
import errno
import io
import logging
import os
import struct
import tempfile
import threading
import zipfile
import zlib

import pytest

from conftest import assert_error, test_config
from fakes import FakeCloudinary, closed_port_url

from app import create_app

# Tiny real images (2x3 pixels), as their encoders wrote them.
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIs"
    "IxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
    "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wAARCAADAAIDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAEC"
    "AwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2Jy"
    "ggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWW"
    "l5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEB"
    "AQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEI"
    "FEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3"
    "eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq"
    "8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDkaKKK8o/Sz//Z"
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAADCAIAAAA2iEnWAAAAFElEQVR4nGM8IafBwMDAxMDAgKAAFP4BFC/5naEAAAAASUVORK5CYII="
)
WEBP = base64.b64decode("UklGRh4AAABXRUJQVlA4TBEAAAAvAYAAAAdQjyIXpf+BiOh/AAA=")
GIF = base64.b64decode("R0lGODdhAgADAIEAAMgeKAAAAAAAAAAAACwAAAAAAgADAAAIBgABCBwYEAA7")
IMAGES = {"jpeg": (JPEG, "image/jpeg"), "png": (PNG, "image/png"), "webp": (WEBP, "image/webp"), "gif": (GIF, "image/gif")}

CLOUD = {"cloud_name": "cinema-test", "api_key": "123456789", "api_secret": "test-secret-abc"}


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("poster.png", PNG)
    return buffer.getvalue()


def upload(client, headers, data, field="image", filename="poster.png", content_type="image/png", **form):
    return client.post(
        "/upload-poster",
        data={field: (io.BytesIO(data), filename, content_type), **form},
        headers=headers,
    )


def upload_json(client, headers, image, **fields):
    return client.post("/upload-poster", json={"image": image, **fields}, headers=headers)


def movie_poster(cinema, movie_id):
    return cinema.client.get(f"/movies/{movie_id}", headers=cinema.admin).json["poster_url"]


# ---- local storage ----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_upload_and_fetch_back_each_format(client, cinema, kind):
    data, content_type = IMAGES[kind]

    response = upload(client, cinema.admin, data, filename="whatever.bin", content_type="application/octet-stream")

    assert response.status_code == 201, response.json
    assert set(response.json) == {"url", "poster_url", "movie"}
    url = response.json["url"]
    assert url.startswith("http://localhost:5500/posters/")  # PUBLIC_URL's default
    assert response.json["poster_url"] == url
    assert response.json["movie"] is None
    assert response.headers["Location"] == url
    fetched = client.get(url.removeprefix("http://localhost:5500"))
    assert fetched.status_code == 200
    assert fetched.data == data
    assert fetched.mimetype == content_type
    assert "max-age=31536000" in fetched.headers["Cache-Control"]
    assert "immutable" in fetched.headers["Cache-Control"]


def test_url_never_uses_the_request_host(tmp_path):
    client = create_app(test_config(tmp_path, PUBLIC_URL="https://cinema.example.com/")).test_client()
    admin = _admin(client)
    movie = client.post("/movies", json={"title": "Heat", "genre": "Crime"}, headers=admin).json

    response = client.post(
        "/upload-poster",
        data={"file": (io.BytesIO(PNG), "p.png"), "movie_id": str(movie["id"])},
        headers={**admin, "Host": "evil.example"},
    )

    assert response.status_code == 201, response.json
    url = response.json["url"]
    assert url.startswith("https://cinema.example.com/posters/")  # the trailing slash is dropped
    assert response.headers["Location"] == url
    # What every user is shown afterwards, on any host.
    shown = client.get(f"/movies/{movie['id']}", headers={**admin, "Host": "cinema.example.com"})
    assert shown.json["poster_url"] == url
    listed = client.get("/movies", headers=admin).json
    assert [item["poster_url"] for item in listed] == [url]


def test_public_url_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PUBLIC_URL", "https://api.cinema.example/v1")
    client = create_app(test_config(tmp_path)).test_client()

    response = upload(client, _admin(client), PNG)

    assert response.json["url"].startswith("https://api.cinema.example/v1/posters/")


@pytest.mark.parametrize(
    "public_url", ["cinema.example.com", "ftp://cinema.example.com", "https://", "https://a.example/?x=1"]
)
def test_a_bad_public_url_stops_the_start(tmp_path, public_url):
    with pytest.raises(RuntimeError, match="PUBLIC_URL"):
        create_app(test_config(tmp_path, PUBLIC_URL=public_url))


class FullDisk(io.FileIO):
    """A file whose writes fail the way a full, over-quota or read-only disk fails them."""

    code = errno.ENOSPC

    def write(self, data):
        raise OSError(self.code, os.strerror(self.code))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_a_full_disk_is_a_503_and_changes_nothing(client, cinema, tmp_path, monkeypatch, code):
    movie = cinema.movie(poster_url="https://example.com/old.jpg")
    monkeypatch.setattr(FullDisk, "code", code)
    monkeypatch.setattr(os, "fdopen", lambda descriptor, mode: FullDisk(descriptor, mode.replace("b", "")))

    response = upload(client, cinema.admin, PNG, movie_id=str(movie["id"]))

    assert_error(response, 503, "full or read-only")
    assert movie_poster(cinema, movie["id"]) == "https://example.com/old.jpg"
    assert list((tmp_path / "posters").iterdir()) == []  # no half-written file left


def test_a_read_only_poster_folder_is_a_503(client, cinema, tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)

    assert_error(upload(client, cinema.admin, PNG), 503, "full or read-only")


def test_same_image_twice_gives_the_same_url(client, cinema):
    first = upload(client, cinema.admin, PNG).json["url"]
    second = upload_json(client, cinema.admin, base64.b64encode(PNG).decode()).json["url"]

    assert first == second


def test_json_base64_and_data_url(client, cinema):
    plain = upload_json(client, cinema.admin, base64.b64encode(GIF).decode())
    data_url = upload_json(
        client, cinema.admin, "data:image/png;base64," + base64.b64encode(JPEG).decode()
    )

    assert plain.status_code == 201, plain.json
    assert data_url.status_code == 201, data_url.json
    assert client.get(plain.json["url"]).mimetype == "image/gif"
    # Judged by the bytes, not by the type the data: URL claims.
    fetched = client.get(data_url.json["url"])
    assert fetched.mimetype == "image/jpeg"
    assert fetched.data == JPEG


def test_movie_id_sets_the_movies_poster(client, cinema):
    movie = cinema.movie()

    response = upload(client, cinema.admin, PNG, movie_id=str(movie["id"]))

    assert response.status_code == 201, response.json
    assert response.json["movie"]["id"] == movie["id"]
    assert response.json["movie"]["poster_url"] == response.json["url"]
    assert movie_poster(cinema, movie["id"]) == response.json["url"]


def test_movie_id_in_json(client, cinema):
    movie = cinema.movie()

    response = upload_json(client, cinema.admin, base64.b64encode(WEBP).decode(), movie_id=movie["id"])

    assert response.status_code == 201, response.json
    assert movie_poster(cinema, movie["id"]) == response.json["url"]


def test_poster_route_with_the_movie_in_the_path(client, cinema):
    movie = cinema.movie()

    response = client.post(
        f"/movies/{movie['id']}/poster", data={"image": (io.BytesIO(JPEG), "p.jpg")}, headers=cinema.admin
    )

    assert response.status_code == 201, response.json
    assert movie_poster(cinema, movie["id"]) == response.json["url"]


def test_poster_route_for_an_unknown_movie(client, cinema):
    response = client.post("/movies/999/poster", data={"image": (io.BytesIO(PNG), "p.png")}, headers=cinema.admin)

    assert_error(response, 404, "Movie 999")


@pytest.mark.parametrize("movie_id", ["999", 999])
def test_upload_for_an_unknown_movie(client, cinema, movie_id):
    if isinstance(movie_id, str):
        response = upload(client, cinema.admin, PNG, movie_id=movie_id)
    else:
        response = upload_json(client, cinema.admin, base64.b64encode(PNG).decode(), movie_id=movie_id)

    assert_error(response, 404, "Movie 999")


def test_upload_for_a_deleted_movie(client, cinema):
    movie = cinema.movie()
    client.delete(f"/movies/{movie['id']}", headers=cinema.admin)

    assert_error(upload(client, cinema.admin, PNG, movie_id=str(movie["id"])), 404)


@pytest.mark.parametrize("movie_id", ["abc", "0", "-1", "1.5", True, 1.5, [1], "99999999999"])
def test_bad_movie_id(client, cinema, movie_id):
    if isinstance(movie_id, str):
        response = upload(client, cinema.admin, PNG, movie_id=movie_id)
    else:
        response = upload_json(client, cinema.admin, base64.b64encode(PNG).decode(), movie_id=movie_id)

    body = assert_error(response, 400)
    assert "movie_id" in body["errors"]


def test_forged_content_type_is_refused(client, cinema):
    response = upload(client, cinema.admin, b"<html><script>alert(1)</script></html>", content_type="image/png")

    body = assert_error(response, 400, "not a JPEG, PNG, WebP or GIF")
    assert "image" in body["errors"]


def test_zip_renamed_png_is_refused(client, cinema):
    assert_error(upload(client, cinema.admin, zip_file(), filename="poster.png"), 400, "not a JPEG")


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_truncated_images_are_refused(client, cinema, kind):
    data, _ = IMAGES[kind]

    assert_error(upload(client, cinema.admin, data[: len(data) - 10]), 400, "truncated")


def test_damaged_png_is_refused(client, cinema):
    damaged = bytearray(PNG)
    damaged[40] ^= 0xFF  # inside the image data: its checksum no longer matches

    assert_error(upload(client, cinema.admin, bytes(damaged)), 400, "checksum")


# ---- images that are also pages, and images of absurd sizes ----------------------
# Built by hand from the tiny images above: a header field changed, a block added.


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_image(width=2, height=3, chunks=b"", after=b""):
    """PNG with another size in IHDR, extra chunks before IEND, bytes after it."""
    header = struct.pack(">II", width, height) + PNG[24:29]  # depth, colour type, ...
    return PNG[:8] + png_chunk(b"IHDR", header) + PNG[33:-12] + chunks + PNG[-12:] + after


def gif_image(width=2, height=3, blocks=b"", after=b""):
    """GIF with another logical screen size, extension blocks before the image, bytes after."""
    return b"GIF89a" + struct.pack("<HH", width, height) + GIF[10:25] + blocks + GIF[25:] + after


def gif_comment(text: bytes) -> bytes:
    """A comment extension: the text in sub-blocks of at most 255 bytes."""
    parts = [text[start : start + 255] for start in range(0, len(text), 255)]
    return b"\x21\xfe" + b"".join(bytes([len(part)]) + part for part in parts) + b"\x00"


JPEG_FRAME = JPEG.index(b"\xff\xc0")  # the SOF0 segment: length, precision, height, width


def jpeg_image(width=2, height=3, segments=b"", after=b""):
    """JPEG with another size in its frame header, segments after SOI, bytes after EOI."""
    sized = JPEG[: JPEG_FRAME + 5] + struct.pack(">HH", height, width) + JPEG[JPEG_FRAME + 9 :]
    return sized[:2] + segments + sized[2:] + after


def jpeg_segment(code: int, body: bytes) -> bytes:
    return bytes([0xFF, code]) + struct.pack(">H", len(body) + 2) + body


def webp_image(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) % 2)


WEBP_LOSSLESS = WEBP[12:]  # its one VP8L chunk


def webp_canvas(width, height, *chunks):
    """An extended WebP (VP8X) with a canvas of that size."""
    canvas = b"\x00" * 4 + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return webp_image(webp_chunk(b"VP8X", canvas), WEBP_LOSSLESS, *chunks)


def webp_lossless(width, height):
    """The lossless WebP with another size in its VP8L header (alpha and version bits kept)."""
    body = WEBP[20:]
    (bits,) = struct.unpack("<I", body[1:5])
    bits = bits & 0xF0000000 | (width - 1) | (height - 1) << 14
    return webp_image(webp_chunk(b"VP8L", body[:1] + struct.pack("<I", bits) + body[5:]))


def webp_lossy(width, height):
    frame = b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8
    return webp_image(webp_chunk(b"VP8 ", frame))


SCRIPT = b"<html><script>alert(document.domain)</script></html>"
# Harmless text that puts what follows past the first kilobyte, which is searched anyway.
FILLER = b"A poster. " * 110


def test_the_hand_built_images_are_accepted(client, cinema):
    for image in (
        png_image(chunks=png_chunk(b"tEXt", b"Comment\x00" + FILLER)),
        gif_image(blocks=gif_comment(FILLER)),
        jpeg_image(segments=jpeg_segment(0xFE, FILLER)),
        webp_canvas(2, 3, webp_chunk(b"XMP ", b"<x:xmpmeta>" + FILLER + b"</x:xmpmeta>")),
        webp_lossless(2, 3),
        webp_lossy(300, 450),
    ):
        assert upload(client, cinema.admin, image).status_code == 201


@pytest.mark.parametrize(
    "image",
    [
        gif_image(blocks=gif_comment(FILLER + SCRIPT)),
        gif_image(blocks=gif_comment(FILLER) + b"\x21\xff\x0bNETSCAPE2.0" + gif_comment(SCRIPT)[2:]),
        gif_image(blocks=gif_comment(FILLER), after=b"<iframe src=javascript:alert(1)>;"),  # after its end
        jpeg_image(segments=jpeg_segment(0xFE, FILLER + SCRIPT)),
        jpeg_image(segments=jpeg_segment(0xE1, b"Exif\x00\x00" + FILLER + b"<BODY onload=alert(1)>")),
        jpeg_image(segments=jpeg_segment(0xFE, FILLER), after=SCRIPT + b"\xff\xd9"),  # after end-of-image
        png_image(chunks=png_chunk(b"tEXt", b"Comment\x00" + FILLER + b"<ScRiPt>alert(1)</sCrIpT>")),
        png_image(chunks=png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + FILLER + b"<svg/onload=1>")),
        png_image(chunks=png_chunk(b"tEXt", b"Comment\x00" + FILLER), after=b"<!DOCTYPE html>"),  # after IEND
        png_image(chunks=png_chunk(b"IDAT", b"<html>")),  # in the first bytes, which browsers sniff
        webp_canvas(2, 3, webp_chunk(b"EXIF", FILLER), webp_chunk(b"XMP ", b"<html><body>")),
        webp_canvas(2, 3, webp_chunk(b"EXIF", FILLER)) + b"<script>",  # after the RIFF data
    ],
    ids=[
        "gif-comment", "gif-application", "gif-after-trailer", "jpeg-comment", "jpeg-exif",
        "jpeg-after-eoi", "png-text", "png-itxt", "png-after-iend", "png-first-bytes", "webp-xmp",
        "webp-after-riff",
    ],
)
def test_images_that_are_also_html_are_refused(client, cinema, tmp_path, image):
    movie = cinema.movie(poster_url="https://example.com/old.jpg")

    response = upload(client, cinema.admin, image, movie_id=str(movie["id"]))

    body = assert_error(response, 400, "HTML")
    assert "image" in body["errors"]
    assert movie_poster(cinema, movie["id"]) == "https://example.com/old.jpg"
    assert list((tmp_path / "posters").glob("*")) == []


def test_tags_in_pixel_data_past_the_first_kilobyte_are_not_searched(client, cinema):
    # Compressed pixels hold short tags such as "<svg" by chance (about one 5 MB
    # image in a hundred); served as an image with nosniff, they are inert.
    image = png_image(chunks=png_chunk(b"tEXt", b"Comment\x00" + FILLER) + png_chunk(b"IDAT", b"<svg"))

    assert upload(client, cinema.admin, image).status_code == 201


@pytest.mark.parametrize(
    "image",
    [
        png_image(100_000, 100_000),
        gif_image(65_535, 65_535),
        jpeg_image(65_535, 65_535),
        webp_canvas(100_000, 100_000),
        webp_lossless(16_384, 16_384),
        webp_lossy(16_383, 16_383),
    ],
    ids=["png", "gif", "jpeg", "webp-canvas", "webp-lossless", "webp-lossy"],
)
def test_images_claiming_absurd_sizes_are_refused(client, cinema, image):
    body = assert_error(upload(client, cinema.admin, image), 400, "pixels")

    assert "image" in body["errors"]


def test_pixel_limit_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("MAX_POSTER_PIXELS", "6")
    client = create_app(test_config(tmp_path)).test_client()
    admin = _admin(client)

    assert upload(client, admin, png_image(2, 3)).status_code == 201
    assert_error(upload(client, admin, png_image(3, 3)), 400, "3x3 pixels; at most 6")
    assert_error(upload(client, admin, jpeg_image(7, 1)), 400, "at most 6")


def test_default_pixel_limit_is_fifty_megapixels(client, cinema):
    assert upload(client, cinema.admin, png_image(10_000, 5_000)).status_code == 201
    assert_error(upload(client, cinema.admin, png_image(10_000, 5_001)), 400, "pixels")


@pytest.mark.parametrize(
    "image",
    [png_image(0, 3), gif_image(2, 0), jpeg_image(0, 3), webp_lossy(0, 450)],
    ids=["png", "gif", "jpeg", "webp"],
)
def test_images_without_pixels_are_refused(client, cinema, image):
    assert_error(upload(client, cinema.admin, image), 400, "no pixels")


def test_empty_file_is_refused(client, cinema):
    assert_error(upload(client, cinema.admin, b""), 400, "empty")


def test_missing_file_field(client, cinema):
    response = client.post("/upload-poster", data={"poster": (io.BytesIO(PNG), "p.png")}, headers=cinema.admin)

    body = assert_error(response, 400, "image")
    assert "image" in body["errors"]


@pytest.mark.parametrize(
    "image",
    ["not base64 at all!", "iVBORw0KGgo=garbage", "data:image/png,rawtext", "", "   ", None, 42],
)
def test_json_image_that_does_not_decode(client, cinema, image):
    body = assert_error(upload_json(client, cinema.admin, image), 400)
    assert "image" in body["errors"]


def test_json_base64_of_something_else(client, cinema):
    response = upload_json(client, cinema.admin, base64.b64encode(b"just some text").decode())

    assert_error(response, 400, "not a JPEG")


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]"])
def test_json_body_that_is_not_an_object(client, cinema, body):
    response = client.post("/upload-poster", data=body, content_type="application/json", headers=cinema.admin)

    assert_error(response, 400)


def test_other_content_types_are_refused(client, cinema):
    response = client.post("/upload-poster", data=PNG, content_type="image/png", headers=cinema.admin)

    assert_error(response, 415)


def test_oversized_multipart_body(tmp_path):
    app = create_app(test_config(tmp_path, MAX_POSTER_BYTES=1000))
    client = app.test_client()
    cinema_admin = _admin(client)
    big = PNG + b"\0" * 200_000

    response = upload(client, cinema_admin, big)

    assert_error(response, 413)


def test_file_just_over_the_limit_is_413(tmp_path):
    app = create_app(test_config(tmp_path, MAX_POSTER_BYTES=len(JPEG) - 1))
    client = app.test_client()
    admin = _admin(client)

    assert_error(upload(client, admin, JPEG), 413, f"larger than {len(JPEG) - 1} bytes")
    assert upload_json(client, admin, base64.b64encode(JPEG).decode()).status_code == 413


def test_file_at_the_limit_is_accepted(tmp_path):
    app = create_app(test_config(tmp_path, MAX_POSTER_BYTES=len(JPEG)))
    client = app.test_client()
    admin = _admin(client)

    assert upload(client, admin, JPEG).status_code == 201
    assert upload_json(client, admin, base64.b64encode(JPEG).decode()).status_code == 201


def test_oversized_json_body(tmp_path):
    app = create_app(test_config(tmp_path, MAX_POSTER_BYTES=1000))
    client = app.test_client()
    admin = _admin(client)

    response = upload_json(client, admin, base64.b64encode(b"\0" * 300_000).decode())

    assert_error(response, 413)


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what the server reads of it."""

    def __init__(self):
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b"A" * len(buffer)
        self.bytes_read += len(buffer)
        return len(buffer)


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x"])
def test_streamed_body_without_length_stops_at_the_limit(tmp_path, content_type):
    app = create_app(test_config(tmp_path, MAX_POSTER_BYTES=1000))
    client = app.test_client()
    admin = _admin(client)
    body = EndlessBody()

    response = client.post(
        "/upload-poster",
        # As a server that handles chunked bodies passes them on: no length, terminated.
        environ_overrides={"wsgi.input": body, "wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
        headers={**admin, "Content-Type": content_type, "Transfer-Encoding": "chunked"},
    )

    assert_error(response, 413)
    assert body.bytes_read < 200_000


def test_default_limit_is_five_megabytes(client, cinema):
    over = PNG + b"\0" * (5 * 1024 * 1024)

    assert_error(upload(client, cinema.admin, over), 413)


def _admin(client):
    from conftest import Cinema

    return Cinema(client).admin


def test_only_admins_may_upload(client, cinema):
    user = cinema.user()

    assert_error(upload(client, user, PNG), 403)
    assert_error(client.post("/upload-poster", data={"image": (io.BytesIO(PNG), "p.png")}), 401)


@pytest.mark.parametrize(
    "name",
    [
        "0" * 64 + ".png",  # well formed, never stored
        "..%2Fjwt-secret.key",
        "../test.db",
        "poster.png",
        "0" * 64 + ".exe",
    ],
)
def test_unknown_or_invalid_poster_names(client, name):
    assert_error(client.get(f"/posters/{name}"), 404)


def test_no_path_traversal_out_of_the_poster_folder(client, cinema):
    upload(client, cinema.admin, PNG)

    response = client.get("/posters/..%2F..%2Ftest.db")

    assert response.status_code == 404


# ---- Cloudinary (through a local fake) --------------------------------------------


@pytest.fixture
def cloudinary_fake():
    fake = FakeCloudinary(**CLOUD)
    yield fake
    fake.stop()


@pytest.fixture
def cloud_app(tmp_path, cloudinary_fake):
    return create_app(test_config(tmp_path, CLOUDINARY_URL=cloudinary_fake.cloudinary_url, CLOUDINARY_TIMEOUT=0.5))


@pytest.fixture
def cloud_cinema(cloud_app):
    from conftest import Cinema

    return Cinema(cloud_app.test_client())


def test_cloudinary_upload_through_the_sdk(cloud_cinema, cloudinary_fake):
    response = upload(cloud_cinema.client, cloud_cinema.admin, JPEG, filename="anything.txt", content_type="text/plain")

    assert response.status_code == 201, response.json
    (sent,) = cloudinary_fake.requests
    assert sent.path == "/v1_1/cinema-test/image/upload"
    assert sent.files["file"] == JPEG
    assert sent.fields["folder"] == "cinema/posters"
    assert sent.fields["api_key"] == CLOUD["api_key"]
    assert cloudinary_fake.signature_valid(sent)
    public_id = cloudinary_fake.uploads[0]
    assert response.json["url"].startswith("https://res.cloudinary.com/cinema-test/image/upload/v")
    assert response.json["url"].endswith(public_id + ".png")
    poster = response.json["poster_url"]
    assert poster.startswith("https://res.cloudinary.com/cinema-test/image/upload/")
    for part in ("c_fill", "w_300", "h_450", "f_auto", "q_auto"):
        assert part in poster
    assert poster.endswith(public_id)


def test_signature_check_of_the_fake_catches_a_wrong_secret(tmp_path, cloudinary_fake):
    wrong = cloudinary_fake.cloudinary_url.replace(CLOUD["api_secret"], "not-the-secret")
    app = create_app(test_config(tmp_path, CLOUDINARY_URL=wrong))
    client = app.test_client()

    response = upload(client, _admin(client), PNG)

    assert_error(response, 502)
    assert not cloudinary_fake.signature_valid(cloudinary_fake.requests[0])


def test_cloudinary_from_the_three_settings(tmp_path, cloudinary_fake):
    app = create_app(
        test_config(
            tmp_path,
            CLOUDINARY_CLOUD_NAME=CLOUD["cloud_name"],
            CLOUDINARY_API_KEY=CLOUD["api_key"],
            CLOUDINARY_API_SECRET=CLOUD["api_secret"],
            CLOUDINARY_UPLOAD_PREFIX=cloudinary_fake.url,
        )
    )
    client = app.test_client()

    response = upload_json(client, _admin(client), base64.b64encode(GIF).decode())

    assert response.status_code == 201, response.json
    assert cloudinary_fake.requests[0].files["file"] == GIF
    assert cloudinary_fake.signature_valid(cloudinary_fake.requests[0])


def test_cloudinary_settings_from_the_environment(tmp_path, monkeypatch, cloudinary_fake):
    monkeypatch.setenv("CLOUDINARY_URL", cloudinary_fake.cloudinary_url)
    client = create_app(test_config(tmp_path)).test_client()

    assert upload(client, _admin(client), PNG).status_code == 201
    assert len(cloudinary_fake.uploads) == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"CLOUDINARY_URL": "https://key:secret@cloud"},
        {"CLOUDINARY_URL": "cloudinary://key@cloud"},
        {"CLOUDINARY_CLOUD_NAME": "cloud", "CLOUDINARY_API_KEY": "key"},
    ],
)
def test_incomplete_cloudinary_settings_stop_the_start(tmp_path, settings):
    with pytest.raises(RuntimeError, match="CLOUDINARY"):
        create_app(test_config(tmp_path, **settings))


def test_not_an_image_never_reaches_cloudinary(cloud_cinema, cloudinary_fake):
    assert_error(upload(cloud_cinema.client, cloud_cinema.admin, zip_file()), 400)
    assert cloudinary_fake.requests == []


def test_replacing_a_poster_destroys_the_old_image(cloud_cinema, cloudinary_fake):
    movie = cloud_cinema.movie()
    first = upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(movie["id"]))
    assert first.status_code == 201, first.json
    assert cloudinary_fake.destroyed == []

    second = cloud_cinema.client.post(
        f"/movies/{movie['id']}/poster", data={"image": (io.BytesIO(JPEG), "p.jpg")}, headers=cloud_cinema.admin
    )

    assert second.status_code == 201, second.json
    assert movie_poster(cloud_cinema, movie["id"]) == second.json["url"]
    first_id, second_id = cloudinary_fake.uploads
    assert cloudinary_fake.destroyed == [first_id]
    destroy = cloudinary_fake.requests[-1]
    assert destroy.path == "/v1_1/cinema-test/image/destroy"
    assert cloudinary_fake.signature_valid(destroy)


def test_poster_shared_by_another_movie_is_kept(cloud_cinema, cloudinary_fake):
    first_movie, second_movie = cloud_cinema.movie(title="A"), cloud_cinema.movie(title="B")
    url = upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(first_movie["id"])).json["url"]
    cloud_cinema.client.put(f"/movies/{second_movie['id']}", json={"poster_url": url}, headers=cloud_cinema.admin)

    upload(cloud_cinema.client, cloud_cinema.admin, JPEG, movie_id=str(first_movie["id"]))

    assert cloudinary_fake.destroyed == []


def test_changing_poster_url_by_put_destroys_the_old_image(cloud_cinema, cloudinary_fake):
    movie = cloud_cinema.movie()
    upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(movie["id"]))

    response = cloud_cinema.client.put(
        f"/movies/{movie['id']}", json={"poster_url": "https://example.com/other.jpg"}, headers=cloud_cinema.admin
    )

    assert response.status_code == 200
    assert cloudinary_fake.destroyed == cloudinary_fake.uploads


def test_deleting_a_movie_destroys_its_poster(cloud_cinema, cloudinary_fake):
    movie = cloud_cinema.movie()
    upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(movie["id"]))

    response = cloud_cinema.client.delete(f"/movies/{movie['id']}", headers=cloud_cinema.admin)

    assert response.status_code == 200
    assert cloudinary_fake.destroyed == cloudinary_fake.uploads


def test_images_from_elsewhere_are_never_destroyed(cloud_cinema, cloudinary_fake):
    movie = cloud_cinema.movie(poster_url="https://res.cloudinary.com/someone-else/image/upload/v1/cinema/posters/x.png")

    upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(movie["id"]))
    cloud_cinema.client.delete(f"/movies/{movie['id']}", headers=cloud_cinema.admin)

    assert cloudinary_fake.destroyed == cloudinary_fake.uploads  # only our own upload


def test_a_failing_destroy_does_not_fail_the_request(cloud_cinema, cloudinary_fake):
    movie = cloud_cinema.movie()
    upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(movie["id"]))
    cloudinary_fake.mode = 500

    response = cloud_cinema.client.delete(f"/movies/{movie['id']}", headers=cloud_cinema.admin)

    assert response.status_code == 200
    assert cloudinary_fake.destroyed == []


class SlowDestroyCloudinary(FakeCloudinary):
    """Answers uploads at once but holds every destroy until ``release`` is set."""

    def __init__(self):
        super().__init__(**CLOUD)
        self.release = threading.Event()

    def answer(self, recorded):
        if recorded.path.endswith("/destroy"):
            self.release.wait(timeout=10)
        return super().answer(recorded)


@pytest.mark.parametrize("change", ["delete the movie", "replace its poster"])
def test_a_hanging_destroy_does_not_hold_the_request(tmp_path, caplog, change):
    """Cloudinary's silence costs the request CLOUDINARY_DELETE_TIMEOUT, not CLOUDINARY_TIMEOUT."""
    from conftest import Cinema

    fake = SlowDestroyCloudinary()
    try:
        app = create_app(
            test_config(
                tmp_path,
                CLOUDINARY_URL=fake.cloudinary_url,
                CLOUDINARY_TIMEOUT=60,
                CLOUDINARY_DELETE_TIMEOUT=0.2,
            )
        )
        cinema = Cinema(app.test_client())
        movie = cinema.movie()
        assert upload(cinema.client, cinema.admin, PNG, movie_id=str(movie["id"])).status_code == 201
        (old_image,) = fake.uploads

        with caplog.at_level(logging.WARNING, logger="cinema.posters"):
            if change == "delete the movie":
                response = cinema.client.delete(f"/movies/{movie['id']}", headers=cinema.admin)
            else:
                response = upload(cinema.client, cinema.admin, JPEG, movie_id=str(movie["id"]))

        assert response.status_code == (200 if change == "delete the movie" else 201), response.json
        assert fake.requests[-1].path.endswith("/destroy")
        assert fake.destroyed == []  # answered while Cloudinary still holds the destroy
        assert old_image in caplog.text
    finally:
        fake.release.set()
        fake.stop()


@pytest.mark.parametrize("mode", [500, 503, 400, 401, 422, "hang"])
def test_cloudinary_failures_are_502_and_change_nothing(cloud_cinema, cloudinary_fake, mode):
    movie = cloud_cinema.movie(poster_url="https://example.com/old.jpg")
    cloudinary_fake.mode = mode

    response = upload(cloud_cinema.client, cloud_cinema.admin, PNG, movie_id=str(movie["id"]))

    assert_error(response, 502, "image host")
    assert len(cloudinary_fake.requests) == 1
    assert movie_poster(cloud_cinema, movie["id"]) == "https://example.com/old.jpg"


def test_cloudinary_unreachable_is_502(tmp_path):
    app = create_app(
        test_config(tmp_path, CLOUDINARY_URL=f"cloudinary://k:s@cloud?upload_prefix={closed_port_url()}")
    )
    client = app.test_client()
    admin = _admin(client)
    movie = client.post("/movies", json={"title": "Heat", "genre": "Crime"}, headers=admin).json

    response = upload(client, admin, PNG, movie_id=str(movie["id"]))

    assert_error(response, 502)
    assert client.get(f"/movies/{movie['id']}", headers=admin).json["poster_url"] is None


def test_a_new_poster_changes_the_movies_etag(client, cinema):
    movie = cinema.movie(title="Tagged")
    tag = client.get(f"/movies/{movie['id']}", headers=cinema.admin).headers["ETag"]

    assert upload(client, cinema.admin, PNG, movie_id=str(movie["id"])).status_code == 201

    response = client.get(f"/movies/{movie['id']}", headers={**cinema.admin, "If-None-Match": tag})
    assert response.status_code == 200 and response.json["poster_url"].endswith(".png")
    assert response.headers["ETag"] != tag
