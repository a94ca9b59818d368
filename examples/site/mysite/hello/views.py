import django
from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render

from .models import Visit


def index(request):
    Visit.objects.create(path=request.path)
    return render(
        request,
        "hello/index.html",
        {
            "greeting": settings.GREETING,
            "visits": Visit.objects.count(),
            "django_version": django.get_version(),
        },
    )


def health(request):
    return HttpResponse("ok", content_type="text/plain")
