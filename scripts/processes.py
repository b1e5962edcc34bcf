"""What the real-server scripts share: finding a gunicorn master's workers, stopping it."""

import os
import signal
import subprocess


def children_of(pid: int) -> list[int]:
    """Process ids of the live children of ``pid`` (a gunicorn master's workers)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == pid and fields[0] != "Z":
                children.append(int(entry))
    return children


def stop(process: subprocess.Popen | None):
    """SIGTERM, up to 30 s for requests in flight, then SIGKILL."""
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
