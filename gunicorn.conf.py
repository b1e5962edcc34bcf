"""gunicorn settings: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

Read from the environment so one file serves every deployment.
"""

import multiprocessing
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # for server.py, wherever gunicorn is started from

import server  # noqa: E402


def env_int(name, default, minimum=None):
    value = os.environ.get(name) or default
    try:
        number = int(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise RuntimeError(f"{name}={value!r} is below {minimum}")
    return number


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{env_int('PORT', 5500)}"
# WEB_CONCURRENCY is what most platforms set; GUNICORN_WORKERS overrides it here.
workers = env_int(
    "GUNICORN_WORKERS", env_int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8))
)


# Threads, not one request per process: a sync worker is held by one client for
# as long as that client takes to send its request, so four slow clients stopped
# the server. server.py's worker is gunicorn's gthread worker plus read deadlines
# (GUNICORN_HEADER_TIMEOUT for the request line and headers, GUNICORN_BODY_TIMEOUT
# for the body, which a steady upload keeps extending; a client too slow gets a
# 408), accepting only with a free thread, and gunicorn's own error answers in the
# API's JSON shape. More slow clients at once than workers x threads still queue.
class Worker(server.ThreadWorker):
    header_timeout = env_int("GUNICORN_HEADER_TIMEOUT", 10, minimum=1)
    body_timeout = env_int("GUNICORN_BODY_TIMEOUT", 20, minimum=1)


worker_class = Worker
# Requests each worker serves at once; a slow client holds one thread until it
# is done or its deadline passes.
threads = env_int("GUNICORN_THREADS", 32, minimum=1)
# With threads, a worker is restarted when its main loop (not one request) has
# not checked in for this long, e.g. when a request holds the GIL that long.
timeout = env_int("GUNICORN_TIMEOUT", 30)
# On SIGTERM, requests in flight get this long to finish.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Seconds a kept-alive connection may wait for its next request.
keepalive = 5

accesslog = "-"
errorlog = "-"
# Client, time, request line, status, bytes, duration in microseconds, user agent.
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(D)sus "%(a)s"'
