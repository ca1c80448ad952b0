"""The automatic sync schedule follows BackupSettings as one celery-beat periodic task."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from appliance.models import SiteSettings
from failover import schedule
from failover.models import BackupSettings

pytestmark = pytest.mark.django_db
Interval = BackupSettings.Interval
Weekday = BackupSettings.Weekday


def save_settings(**fields: object) -> BackupSettings:
    settings = BackupSettings.load()
    for name, value in fields.items():
        setattr(settings, name, value)
    settings.save()
    return settings


def the_task() -> PeriodicTask:
    return PeriodicTask.objects.get(name=schedule.TASK_NAME)


def set_time_zone(name: str) -> None:
    site = SiteSettings.load()
    site.time_zone = name
    site.save()


def test_migrating_creates_the_task_from_the_default_settings_resting_while_continuous():
    task = the_task()
    assert BackupSettings.load().sync_interval == Interval.CONTINUOUS
    assert task.task == "failover.tasks.scheduled_sync"
    assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.HOURS)
    assert not task.enabled, "continuous replication needs no scheduled sync"
    assert schedule.describe(BackupSettings.load()) == "continuously"


def test_a_schedule_instead_of_continuous_replication_enables_the_task():
    schedule.apply(save_settings(sync_interval=Interval.EVERY_HOUR))
    assert the_task().enabled
    schedule.apply(save_settings(sync_interval=Interval.CONTINUOUS, synchronous_replication=True))
    assert not the_task().enabled
    assert schedule.describe(BackupSettings.load()) == "continuously (synchronous)"


@pytest.mark.parametrize(
    ("fields", "every", "period"),
    [
        ({"sync_interval": Interval.EVERY_15_MINUTES}, 15, IntervalSchedule.MINUTES),
        ({"sync_interval": Interval.EVERY_HOUR}, 1, IntervalSchedule.HOURS),
        (
            {"sync_interval": Interval.EVERY_N_HOURS, "sync_every_hours": 6},
            6,
            IntervalSchedule.HOURS,
        ),
    ],
)
def test_short_intervals_become_an_interval_schedule(fields, every, period):
    settings = save_settings(**fields)
    returned = schedule.apply(settings)
    task = the_task()
    assert returned == task
    assert (task.interval.every, task.interval.period) == (every, period)
    assert task.crontab is None
    assert task.task == schedule.TASK
    assert json.loads(task.kwargs) == {}
    assert task.enabled


def test_daily_becomes_a_crontab_at_that_time_in_the_sites_time_zone():
    set_time_zone("Asia/Tokyo")
    schedule.apply(save_settings(sync_interval=Interval.DAILY, sync_time=dt.time(2, 30)))
    task = the_task()
    assert task.interval is None
    crontab = task.crontab
    assert (crontab.minute, crontab.hour) == ("30", "2")
    assert (crontab.day_of_week, crontab.day_of_month, crontab.month_of_year) == ("*", "*", "*")
    assert str(crontab.timezone) == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("weekday", "cron_day"),
    [
        (Weekday.MONDAY, "1"),
        (Weekday.TUESDAY, "2"),
        (Weekday.WEDNESDAY, "3"),
        (Weekday.THURSDAY, "4"),
        (Weekday.FRIDAY, "5"),
        (Weekday.SATURDAY, "6"),
        (Weekday.SUNDAY, "0"),
    ],
)
def test_weekly_becomes_a_crontab_counting_days_from_sunday(weekday, cron_day):
    settings = save_settings(
        sync_interval=Interval.WEEKLY, sync_time=dt.time(23, 5), sync_weekday=weekday
    )
    schedule.apply(settings)
    crontab = the_task().crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("5", "23", cron_day)
    assert str(crontab.timezone) == "UTC"


def test_the_crontab_runs_on_the_chosen_weekday_in_the_chosen_zone():
    set_time_zone("America/New_York")
    settings = save_settings(
        sync_interval=Interval.WEEKLY, sync_time=dt.time(2, 0), sync_weekday=Weekday.SUNDAY
    )
    schedule.apply(settings)
    # Saturday 2025-02-08 12:00 in New York; the next run is Sunday 02:00 there.
    now = dt.datetime(2025, 2, 8, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    cron = the_task().crontab.schedule
    cron.nowfun = lambda: now
    due, wait = cron.is_due(now)
    assert not due
    assert wait == pytest.approx(14 * 3600, abs=1)


def test_applying_without_settings_reads_the_saved_ones():
    save_settings(sync_interval=Interval.EVERY_N_HOURS, sync_every_hours=12)
    schedule.apply()
    assert the_task().interval.every == 12


def test_disabling_backup_operations_disables_the_task_and_enabling_enables_it():
    schedule.apply(save_settings(enable_backup_operations=False, sync_interval=Interval.EVERY_HOUR))
    assert not the_task().enabled
    schedule.apply(save_settings(enable_backup_operations=True))
    assert the_task().enabled


def test_switching_between_kinds_keeps_one_task_with_one_schedule():
    schedule.apply(save_settings(sync_interval=Interval.DAILY, sync_time=dt.time(4, 0)))
    schedule.apply(save_settings(sync_interval=Interval.EVERY_15_MINUTES))
    task = the_task()
    assert task.crontab is None
    assert task.interval.every == 15
    schedule.apply(save_settings(sync_interval=Interval.WEEKLY, sync_weekday=Weekday.FRIDAY))
    task = the_task()
    assert task.interval is None
    assert task.crontab.day_of_week == "5"
    assert PeriodicTask.objects.filter(task=schedule.TASK).count() == 1


def test_saving_the_sites_time_zone_moves_the_crontab_to_it():
    schedule.apply(save_settings(sync_interval=Interval.DAILY, sync_time=dt.time(2, 30)))
    assert str(the_task().crontab.timezone) == "UTC"
    set_time_zone("Europe/Berlin")
    crontab = the_task().crontab
    assert str(crontab.timezone) == "Europe/Berlin"
    assert (crontab.minute, crontab.hour) == ("30", "2")


def test_saving_the_time_zone_leaves_an_interval_as_it_was():
    schedule.apply(save_settings(sync_interval=Interval.EVERY_N_HOURS, sync_every_hours=3))
    before = the_task().interval_id
    set_time_zone("Europe/Berlin")
    task = the_task()
    assert task.interval_id == before
    assert task.crontab is None


def test_applying_twice_reuses_the_schedules():
    settings = save_settings(sync_interval=Interval.DAILY, sync_time=dt.time(1, 0))
    schedule.apply(settings)
    crontabs = CrontabSchedule.objects.count()
    schedule.apply(settings)
    assert CrontabSchedule.objects.count() == crontabs


@pytest.mark.parametrize(
    ("fields", "described"),
    [
        ({"sync_interval": Interval.EVERY_15_MINUTES}, "every 15 minutes"),
        ({"sync_interval": Interval.EVERY_HOUR}, "every hour"),
        ({"sync_interval": Interval.EVERY_N_HOURS, "sync_every_hours": 8}, "every 8 hours"),
        ({"sync_interval": Interval.DAILY, "sync_time": dt.time(7, 5)}, "every day at 07:05"),
        (
            {
                "sync_interval": Interval.WEEKLY,
                "sync_time": dt.time(23, 45),
                "sync_weekday": Weekday.SUNDAY,
            },
            "every Sunday at 23:45",
        ),
        (
            {
                "sync_interval": Interval.WEEKLY,
                "sync_time": dt.time(0, 0),
                "sync_weekday": Weekday.MONDAY,
            },
            "every Monday at 00:00",
        ),
    ],
)
def test_describe_says_the_schedule_in_words(fields, described):
    settings = BackupSettings(**fields)
    assert schedule.describe(settings) == described
    schedule.apply(settings)
    assert the_task().description == f"Data sync {described} (Management > Failover)."
