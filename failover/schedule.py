"""The automatic sync schedule, kept in step with BackupSettings as a celery-beat periodic task.

Beat's database scheduler notices changes to the PeriodicTask row, so a saved
setting takes effect without restarting anything. The task itself checks the
site's role, so the same schedule can exist on both sites.
"""

from __future__ import annotations

import json

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from appliance.models import SiteSettings
from failover.models import BackupSettings, ScheduledBackup

POLL_TASK_NAME = "failover: poll the primary"
TASK_NAME = "failover: scheduled data sync"
TASK = "failover.tasks.scheduled_sync"
BACKUP_TASK_NAME = "failover: scheduled site backup"
BACKUP_TASK = "failover.tasks.scheduled_backup"
# crontab counts days from Sunday (0); BackupSettings.Weekday from Monday (0).
CRON_WEEKDAY = {monday_based: (monday_based + 1) % 7 for monday_based in range(7)}


def describe(settings: BackupSettings) -> str:
    """The schedule in words, as the Failover page shows it."""
    interval = BackupSettings.Interval
    at = settings.sync_time.strftime("%H:%M")
    return {
        interval.CONTINUOUS: "continuously"
        + (" (synchronous)" if settings.synchronous_replication else ""),
        interval.EVERY_15_MINUTES: "every 15 minutes",
        interval.EVERY_HOUR: "every hour",
        interval.EVERY_N_HOURS: f"every {settings.sync_every_hours} hours",
        interval.DAILY: f"every day at {at}",
        interval.WEEKLY: f"every {settings.get_sync_weekday_display()} at {at}",
    }[settings.sync_interval]


# Continuously, the backup hears from the primary at least every long poll (20 s); a
# minute without a word means replication is not following.
CONTINUOUS_GAP_SECONDS = 60


def longest_gap(settings: BackupSettings) -> int:
    """The most seconds the schedule lets pass between two syncs."""
    interval = BackupSettings.Interval
    return {
        interval.CONTINUOUS: CONTINUOUS_GAP_SECONDS,
        interval.EVERY_15_MINUTES: 15 * 60,
        interval.EVERY_HOUR: 3600,
        interval.EVERY_N_HOURS: settings.sync_every_hours * 3600,
        interval.DAILY: 24 * 3600,
        interval.WEEKLY: 7 * 24 * 3600,
    }[settings.sync_interval]


def apply(settings: BackupSettings | None = None) -> PeriodicTask:
    """Create or update the periodic task so that it matches the settings."""
    settings = settings or BackupSettings.load()
    interval = crontab = None
    kind = BackupSettings.Interval
    if settings.sync_interval in (
        kind.CONTINUOUS,
        kind.EVERY_15_MINUTES,
        kind.EVERY_HOUR,
        kind.EVERY_N_HOURS,
    ):
        every, period = {
            # Continuously: the scheduled sync rests; replication follows the primary.
            kind.CONTINUOUS: (1, IntervalSchedule.HOURS),
            kind.EVERY_15_MINUTES: (15, IntervalSchedule.MINUTES),
            kind.EVERY_HOUR: (1, IntervalSchedule.HOURS),
            kind.EVERY_N_HOURS: (settings.sync_every_hours, IntervalSchedule.HOURS),
        }[settings.sync_interval]
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    else:
        weekday = "*"
        if settings.sync_interval == kind.WEEKLY:
            weekday = str(CRON_WEEKDAY[settings.sync_weekday])
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=str(settings.sync_time.minute),
            hour=str(settings.sync_time.hour),
            day_of_week=weekday,
            day_of_month="*",
            month_of_year="*",
            timezone=SiteSettings.load().time_zone,
        )
    poll_every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.poll_interval_seconds, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=POLL_TASK_NAME,
        defaults={
            "task": "failover.tasks.poll_primary",
            "interval": poll_every,
            "queue": "network",
            # A poll that waited longer than one interval is stale: the next one replaces it.
            "expire_seconds": settings.poll_interval_seconds,
            "crontab": None,
            "enabled": settings.enable_backup_operations and settings.automatic_failover,
            "description": "The backup's monitor (Management > Failover, automatic failover).",
        },
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={
            "task": TASK,
            "interval": interval,
            "crontab": crontab,
            "enabled": settings.enable_backup_operations and not settings.is_continuous,
            "kwargs": json.dumps({}),
            "description": f"Data sync {describe(settings)} (Management > Failover).",
        },
    )
    return task


def apply_backup(config: ScheduledBackup | None = None) -> PeriodicTask:
    """Create or update the daily site backup's periodic task to match its settings."""
    config = config or ScheduledBackup.load()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=str(config.at.minute),
        hour=str(config.at.hour),
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=SiteSettings.load().time_zone,
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=BACKUP_TASK_NAME,
        defaults={
            "task": BACKUP_TASK,
            "interval": None,
            "crontab": crontab,
            "enabled": config.enabled,
            "kwargs": json.dumps({}),
            "description": f"Site backup every day at {config.at:%H:%M} to {config.folder}, "
            f"keeping {config.keep} (Management > Backup).",
        },
    )
    return task
