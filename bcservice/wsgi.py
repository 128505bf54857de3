"""WSGI entry point (gunicorn bcservice.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bcservice.settings")
application = get_wsgi_application()
