"""Local stand-ins for Resend and Cloudinary that the real SDKs talk to over HTTP.

Each fake is a threaded HTTP server on 127.0.0.1 with an ephemeral port. It records
every request it gets and answers like the service, or fails as told by ``mode``:
an HTTP status (500, 422, ...) or ``"hang"`` (no answer until the test ends).
``closed_port_url()`` gives an address where nothing listens (connection refused).
"""

import hashlib
import io
import itertools
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from werkzeug.formparser import parse_form_data


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes
    json: object = None
    fields: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


class FakeServer:
    """Records requests; answers with ``answer(recorded)`` unless ``mode`` says fail."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.mode = "ok"
        self._release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorded = fake.record(self.command, self.path, dict(self.headers), self.rfile.read(length))
                if fake.mode == "hang":
                    fake._release.wait(timeout=30)
                    return
                if fake.mode != "ok":
                    status, body = fake.mode, fake.error_body(fake.mode)
                else:
                    status, body = fake.answer(recorded)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def record(self, method, path, headers, body) -> Recorded:
        recorded = Recorded(method, path, headers, body)
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            recorded.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            environ = {
                "wsgi.input": io.BytesIO(body),
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": content_type,
                "REQUEST_METHOD": method,
            }
            _, form, files = parse_form_data(environ)
            recorded.fields = form.to_dict()
            recorded.files = {name: upload.read() for name, upload in files.items()}
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def error_body(self, status):
        return {"error": {"message": f"Fake failure {status}"}}

    def answer(self, recorded):
        raise NotImplementedError

    def stop(self):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


class FakeResend(FakeServer):
    """POST /emails as Resend answers it, honouring Idempotency-Key like the real API."""

    def __init__(self):
        super().__init__()
        self._ids = {}

    @property
    def delivered(self) -> list[Recorded]:
        """The emails sent: the first accepted request for each idempotency key."""
        return list(self._ids.values())

    def answer(self, recorded):
        if recorded.path != "/emails":
            return 404, {"statusCode": 404, "name": "not_found", "message": "Unknown route"}
        key = recorded.headers.get("Idempotency-Key") or object()
        first = self._ids.setdefault(key, recorded)
        return 200, {"id": f"email-{id(first)}"}

    def error_body(self, status):
        return {"statusCode": status, "name": "application_error", "message": f"Fake failure {status}"}


class FakeCloudinary(FakeServer):
    """The upload and destroy endpoints of Cloudinary's Upload API."""

    def __init__(self, cloud_name, api_key, api_secret):
        super().__init__()
        self.cloud_name, self.api_key, self.api_secret = cloud_name, api_key, api_secret
        self._versions = itertools.count(1700000001)
        self.uploads = []  # public ids, in order
        self.destroyed = []

    @property
    def cloudinary_url(self) -> str:
        return f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}?upload_prefix={self.url}"

    def signature_valid(self, recorded) -> bool:
        """Cloudinary's rule: SHA-1 of the sorted key=value pairs joined by & plus the secret."""
        signed = {k: v for k, v in recorded.fields.items() if k not in ("signature", "api_key", "file")}
        pairs = "&".join(f"{k}={v}".replace("&", "%26") for k, v in sorted(signed.items()))
        expected = hashlib.sha1((pairs + self.api_secret).encode()).hexdigest()
        return recorded.fields.get("signature") == expected and recorded.fields.get("api_key") == self.api_key

    def answer(self, recorded):
        prefix = f"/v1_1/{self.cloud_name}/image/"
        if not recorded.path.startswith(prefix) or not self.signature_valid(recorded):
            return 401, {"error": {"message": "Invalid signature"}}
        action = recorded.path[len(prefix):]
        if action == "upload":
            version = next(self._versions)
            public_id = f"{recorded.fields['folder']}/poster{version}"
            self.uploads.append(public_id)
            return 200, {
                "public_id": public_id,
                "version": version,
                "format": "png",
                "resource_type": "image",
                "secure_url": f"https://res.cloudinary.com/{self.cloud_name}/image/upload/v{version}/{public_id}.png",
            }
        if action == "destroy":
            self.destroyed.append(recorded.fields["public_id"])
            return 200, {"result": "ok"}
        return 404, {"error": {"message": "Unknown action"}}


def closed_port_url() -> str:
    """An address on this machine where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
