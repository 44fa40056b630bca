"""The estimated finish of a job (``tasks.forecast``): the rule the dashboard states."""

from datetime import UTC, datetime, timedelta

from tasks import forecast

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def test_finish_is_remaining_work_at_the_recent_pace():
    # 30 replicas in the last 3 hours: 10 an hour; 50 remaining take 5 hours.
    f = forecast.estimate_finish(
        remaining=50, completed_recently=30, since=NOW - timedelta(hours=3), now=NOW
    )
    assert f.finish == NOW + timedelta(hours=5)
    assert f.per_hour == 10.0
    assert "10.0 submissions an hour" in f.why


def test_no_estimate_from_too_little_recent_work():
    few = forecast.estimate_finish(
        remaining=50,
        completed_recently=forecast.MIN_SAMPLES - 1,
        since=NOW - timedelta(hours=3),
        now=NOW,
    )
    assert few.finish is None and "too little recent work" in few.why
    brief = forecast.estimate_finish(
        remaining=50, completed_recently=20, since=NOW - timedelta(minutes=5), now=NOW
    )
    assert brief.finish is None


def test_nothing_remaining_is_finished_now():
    f = forecast.estimate_finish(remaining=0, completed_recently=0, since=NOW, now=NOW)
    assert f.finish == NOW and f.remaining == 0


def test_the_window_is_the_last_day_or_since_publishing():
    assert forecast.window_start(now=NOW, published_at=None) == NOW - forecast.WINDOW
    old = NOW - timedelta(days=5)
    assert forecast.window_start(now=NOW, published_at=old) == NOW - forecast.WINDOW
    recent = NOW - timedelta(hours=2)
    assert forecast.window_start(now=NOW, published_at=recent) == recent
