"""README's curl walk-through, run as written against `python app.py` on an empty database."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every curl fails on an HTTP error answer, so the first command that does not work stops the run.
STRICT = "set -euo pipefail\ncurl() { command curl --fail-with-body \"$@\"; }\n"


def walkthrough():
    """The README section's text and its two bash blocks: the server, then the commands."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
        section = readme.read().split("## A walk-through with curl", 1)[1].split("\n## ", 1)[0]
    return section, re.findall(r"```bash\n(.*?)```", section, re.S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def project(tmp_path):
    """A copy of the project with the README's `.venv` being the environment running the tests."""
    folder = tmp_path / "project"
    skipped = shutil.ignore_patterns(".git", ".env", "instance", "*venv*", "__pycache__", "test-output", "*.db")
    shutil.copytree(ROOT, folder, ignore=skipped)
    (folder / ".venv").symlink_to(sys.prefix)
    return folder


def run_server(project, script, environment):
    """Start the README's server block in its own process group, as a terminal would."""
    server = subprocess.Popen(
        ["bash", "-c", script], cwd=project, env=environment, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    health = f"http://127.0.0.1:{environment['PORT']}/health"
    for _ in range(300):
        try:
            with urllib.request.urlopen(health, timeout=1):
                return server
        except OSError:
            assert server.poll() is None, "the server stopped before answering"
            time.sleep(0.1)
    stop(server)
    raise AssertionError("the server did not answer /health")


def stop(server):
    """Ctrl-C: SIGINT to the terminal's process group."""
    os.killpg(server.pid, signal.SIGINT)
    server.wait(timeout=60)


def run_commands(project, commands, environment):
    script = STRICT + commands.replace("http://localhost:5500", f"http://localhost:{environment['PORT']}")
    return subprocess.run(
        ["bash", "-c", script], cwd=project, env=environment, capture_output=True, text=True, timeout=120
    )


def base_environment(**extra):
    names = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    return {**{name: os.environ[name] for name in names if name in os.environ}, "PORT": str(free_port()), **extra}


def walk(project, server_block, commands, environment):
    """Start the server, run the commands, Ctrl-C: what the commands printed."""
    server = run_server(project, server_block, environment)
    try:
        result = run_commands(project, commands, environment)
    finally:
        stop(server)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    assert '"message":"Reservation cancelled successfully"' in result.stdout
    assert '"cancelled_reservations": 1' in result.stdout
    # The two-step checkout: the hold, then its confirmation as reservation 3.
    assert '"message":"Seats held"' in result.stdout
    assert '"message":"Reservation confirmed","reservation":{"id":3' in result.stdout
    return result.stdout


def test_the_walkthrough_works_as_written_on_each_empty_database_it_names(project, tmp_path):
    section, (server_block, commands) = walkthrough()
    environment = base_environment()
    cinema_db = project / "instance" / "cinema.db"

    walk(project, server_block, commands, environment)
    kept = cinema_db.read_bytes()

    # The other way: both terminals export DATABASE_URL to a new SQLite file; instance/ stays.
    (url,) = re.findall(r"`export DATABASE_URL=(sqlite:////\S+)`", section)
    new_file = tmp_path / os.path.basename(url)
    app_only = server_block.replace("rm -rf instance/", "")
    walk(project, app_only, commands, {**environment, "DATABASE_URL": f"sqlite:///{new_file}"})
    assert new_file.exists() and cinema_db.read_bytes() == kept

    # Starting over: the server block again empties instance/ first.
    walk(project, server_block, commands, environment)
