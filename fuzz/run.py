"""Fuzz the API against its own OpenAPI document with schemathesis.

Starts the app on 127.0.0.1 (an ephemeral port) with a fresh SQLite database holding
the demo cinema, then runs `st run` once as the demo user and once as the demo admin.
Exits non-zero when any run reports a failure. Reports go to test-output/fuzz/.
"""

import os
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from demo import DEMO_ADMIN, DEMO_USER  # noqa: E402


def start_server(database_dir):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{os.path.join(database_dir, 'fuzz.db')}",
            "JWT_SECRET_KEY": os.urandom(32).hex(),
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # the hooks log in often
            "RATELIMIT_ENABLED": False,  # else /login answers 429 to the hooks
            "RESEND_API_KEY": None,
            "LOG_LEVEL": "ERROR",
        }
    )
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    if result.exit_code:
        sys.exit(f"seed-demo failed: {result.output}")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fuzz(base_url, role, account, extra_args):
    report_dir = os.path.join(ROOT, "test-output", "fuzz", role)
    env = {
        **os.environ,
        "FUZZ_BASE_URL": base_url,
        "FUZZ_USERNAME": account["username"],
        "FUZZ_PASSWORD": account["password"],
        "PYTHONPATH": HERE,
    }
    command = [
        os.path.join(os.path.dirname(sys.executable), "st"),
        "--config-file",
        os.path.join(HERE, "schemathesis.toml"),
        "run",
        f"{base_url}/openapi.json",
        "--report",
        "junit",
        "--report-dir",
        report_dir,
        *extra_args,
    ]
    print(f"== schemathesis as {role} ({account['username']})", flush=True)
    return subprocess.run(command, env=env, cwd=HERE).returncode


def main(extra_args):
    with tempfile.TemporaryDirectory(prefix="cinema-fuzz-") as database_dir:
        server = start_server(database_dir)
        base_url = f"http://127.0.0.1:{server.server_port}"
        try:
            codes = {
                role: fuzz(base_url, role, account, extra_args)
                for role, account in (("user", DEMO_USER), ("admin", DEMO_ADMIN))
            }
        finally:
            server.shutdown()
    failed = [role for role, code in codes.items() if code]
    print(f"fuzz: {len(codes) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
