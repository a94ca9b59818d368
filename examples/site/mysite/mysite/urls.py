from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve

from hello import views

urlpatterns = [
    path("", views.index, name="index"),
    path("health", views.health, name="health"),
    # The demo runs gunicorn with no front proxy, so Django serves the
    # collected STATIC_ROOT itself (django.conf.urls.static.static() would only
    # do that with DEBUG on).  A real deployment lets the web server do this.
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": settings.STATIC_ROOT}),
]
