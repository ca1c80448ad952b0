"""Two tiny peer endpoints for the authentication tests (@pytest.mark.urls)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from appliance.models import SiteSettings
from security.peer_views import PeerAPIView


class Echo(PeerAPIView):
    """Answers with what it was sent; changes nothing."""

    def get(self, request: Request) -> Response:
        return Response({"echo": dict(request.query_params)})

    def post(self, request: Request) -> Response:
        return Response({"echo": request.data})


class SiteName(PeerAPIView):
    """Changes the site name, so a test can see that a refused request changed nothing."""

    def post(self, request: Request) -> Response:
        name = request.data.get("site_name")
        if not isinstance(name, str) or not name:
            return Response({"detail": "Send the new site name as site_name."}, status=400)
        site = SiteSettings.load()
        site.site_name = name
        site.save()
        return Response({"site_name": site.site_name, "caller": str(request.user)})


urlpatterns = [
    path("peer-test/echo/", Echo.as_view()),
    path("peer-test/site-name/", SiteName.as_view()),
]
