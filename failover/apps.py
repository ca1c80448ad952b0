from django.apps import AppConfig


class FailoverConfig(AppConfig):
    name = "failover"
    verbose_name = "Failover"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, post_save

        from appliance.models import SiteSettings
        from failover.sync import changelog

        changelog.connect()
        post_migrate.connect(_ensure_schedule, sender=self, dispatch_uid="failover-schedule")
        # The daily and weekly times are in the site's time zone.
        post_save.connect(_ensure_schedule, sender=SiteSettings, dispatch_uid="failover-tz")


def _ensure_schedule(**_kwargs: object) -> None:
    from failover import schedule

    schedule.apply()
