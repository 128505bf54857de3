"""gunicorn settings for the web process: `gunicorn -c deploy/gunicorn.conf.py bcservice.wsgi`."""

import multiprocessing
import os

bind = os.environ.get("BC_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("BC_WEB_WORKERS", str(multiprocessing.cpu_count() * 2 + 1)))
threads = int(os.environ.get("BC_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
accesslog = "-"
errorlog = "-"
# The app logs JSON itself (with request ids); keep gunicorn's access line short.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("BC_FORWARDED_ALLOW_IPS", "127.0.0.1")
