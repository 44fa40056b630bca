"""gunicorn settings for the web process, shared by the Docker image, compose and ``bench/claim``.

Threads, not more processes: a request spends a good part of its time waiting on PostgreSQL, so a
few threads per process keep the cores busy, and fewer processes mean fewer database connections
and less contention for the CPU. Measured on the 2-core bench machine with 16 workers looping
claim -> submit (``bench/claim.py``): 1 process per core x 4 threads served 307 pairs/s at 5.5 ms
server CPU per pair; 4 processes x 4 threads, 242 pairs/s at 7.3 ms (more processes than cores
spend their CPU switching). Override with ``WEB_CONCURRENCY`` / ``WEB_THREADS``.
"""

import multiprocessing
import os

bind = os.environ.get("WEB_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", 4))
keepalive = int(os.environ.get("WEB_KEEPALIVE", 30))
timeout = int(os.environ.get("WEB_TIMEOUT", 120))
# Recycle workers now and then so a slow leak cannot grow without bound; jitter avoids all
# workers restarting at once.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", 20_000))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
