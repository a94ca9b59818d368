"""WSGI entry point: `gunicorn mysite.wsgi` (run from the project folder)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
