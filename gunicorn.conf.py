"""gunicorn settings: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

Read from the environment so one file serves every deployment.
"""

import multiprocessing
import os


def env_int(name, default):
    value = os.environ.get(name) or default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a whole number") from None


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{env_int('PORT', 5500)}"
# WEB_CONCURRENCY is what most platforms set; GUNICORN_WORKERS overrides it here.
workers = env_int(
    "GUNICORN_WORKERS", env_int("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, 8))
)
worker_class = "sync"
# A request stuck longer than this is killed and its worker restarted.
timeout = env_int("GUNICORN_TIMEOUT", 30)
# On SIGTERM, requests in flight get this long to finish.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = 5

accesslog = "-"
errorlog = "-"
# Client, time, request line, status, bytes, duration in microseconds, user agent.
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(D)sus "%(a)s"'
