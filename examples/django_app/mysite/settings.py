"""Settings of the example project: an edit here restarts the server (Django reads them once)."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "relive-example-not-secret"  # a local example: nothing to keep secret
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["notes"]
MIDDLEWARE = ["notes.middleware.served_by"]
ROOT_URLCONF = "mysite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
    }
]
DATABASES: dict[str, object] = {}  # the example keeps its notes in memory
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
