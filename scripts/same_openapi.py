"""Prove that a change leaves the OpenAPI document byte for byte as it was.

    python scripts/same_openapi.py [REV]    (REV defaults to HEAD)

Builds GET /openapi.json from the working tree and from REV (checked out into a
temporary worktree), each in a fresh interpreter with an in-memory database,
and compares the bytes. Exits 1 with a unified diff when they differ.
"""

import difflib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = """
import sys
sys.path.insert(0, ".")
from app import create_app
app = create_app({
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "JWT_SECRET_KEY": "x" * 48,
    "CREATE_TABLES": True,
    "ADMIN_USERNAME": None,
})
sys.stdout.buffer.write(app.test_client().get("/openapi.json").data)
"""


def openapi_of(folder: str) -> bytes:
    # Settings from the environment (or a .env file) must not colour either side.
    environment = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-c", BUILD], cwd=folder, env=environment, check=True, capture_output=True
    ).stdout


def main() -> int:
    revision = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    with tempfile.TemporaryDirectory() as scratch:
        worktree = os.path.join(scratch, "tree")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", worktree, revision], cwd=ROOT, check=True)
        try:
            before = openapi_of(worktree)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", worktree], cwd=ROOT, check=True)
    after = openapi_of(ROOT)
    if before == after:
        print(f"OpenAPI document unchanged since {revision}: {len(after)} bytes, identical.")
        return 0
    print(f"OpenAPI document differs from {revision}:")
    lines = [json.dumps(json.loads(document), indent=1, sort_keys=True).splitlines() for document in (before, after)]
    sys.stdout.writelines(line + "\n" for line in difflib.unified_diff(*lines, revision, "working tree", lineterm=""))
    return 1


if __name__ == "__main__":
    sys.exit(main())
