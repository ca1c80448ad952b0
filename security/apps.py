from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        # Deferred until the app registry is ready: the receiver reads a model.
        from appliance.signals import status_facts
        from security.receivers import key_fact

        status_facts.connect(key_fact, dispatch_uid="security-key-fact")
