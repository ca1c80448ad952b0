from django.apps import AppConfig


class ApplianceConfig(AppConfig):
    name = "appliance"
    verbose_name = "Appliance"

    def ready(self) -> None:
        from appliance import signals  # noqa: F401  (connects the heartbeat signals)
