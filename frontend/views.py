"""The React app's entry page; everything else it needs comes from the REST API."""

from django.http import HttpRequest, HttpResponse


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("The React app has not been built yet.", content_type="text/plain")
