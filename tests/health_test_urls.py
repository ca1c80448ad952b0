"""The site's URLs plus the health routes, for tests that run before appliance/urls.py has them.

Once appliance/urls.py includes failover.api.urls this module adds nothing.
"""

from django.urls import include, path

from appliance.urls import urlpatterns as site_urlpatterns

already_included = any(
    getattr(pattern, "namespace", None) == "failover_api" for pattern in site_urlpatterns
)

urlpatterns = [
    *site_urlpatterns,
    *([] if already_included else [path("", include("failover.api.urls"))]),
]
