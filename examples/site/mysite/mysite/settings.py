"""Settings for the pysfx example site.

Everything deployment-specific comes from os.environ, which pysfx fills from
<release dir>/environment.json when the interpreter starts.  The release dir is
the parent of this project folder (BASE_DIR.parent): the database and the
collected static files live there, next to the app, not inside it.
"""
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
RELEASE_DIR = BASE_DIR.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    # JSON true may arrive as "true", "True" or "1" depending on who wrote it.
    return value.strip().lower() in ("1", "true", "yes", "on")


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment when DEBUG is off")
    SECRET_KEY = "insecure-dev-only-key"

GREETING = os.environ.get("GREETING", "Hello from pysfx")

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "hello",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # str(): Django 3.2 on Python 3.6 does not take a Path here everywhere.
        "NAME": os.environ.get("DATABASE_PATH", str(RELEASE_DIR / "db.sqlite3")),
    }
}

# Explicit, so 3.2 does not warn (models.W042) and 0001_initial matches on every version.
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT", str(RELEASE_DIR / "static"))
STATICFILES_DIRS = [str(BASE_DIR / "hello" / "static")]
# The app's static dir is listed above, so the app-directories finder would
# find every file twice ("Found another file ..." on each collectstatic).
STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]
# Extra static trees packed with `pysfx pack --static DIR` land in
# <release dir>/static.in/0, /1, ...; collectstatic gathers them too, in
# numeric order (0, 1, ..., 10), so an earlier --static wins a name clash.
_static_in = RELEASE_DIR / "static.in"
if _static_in.is_dir():
    _trees = sorted((p for p in _static_in.iterdir() if p.is_dir()), key=lambda p: (len(p.name), p.name))
    STATICFILES_DIRS += [str(p) for p in _trees]
