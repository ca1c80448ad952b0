from django.apps import AppConfig


class ApplianceConfig(AppConfig):
    name = "appliance"
    verbose_name = "Appliance"

    def ready(self) -> None:
        # Deferred until the app registry is ready: these modules import models.
        from appliance import (
            api_accounts,  # noqa: F401  (a deleted API account takes its tokens along)
            signals,  # noqa: F401  (connects the heartbeat signals)
        )
