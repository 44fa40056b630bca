"""Probes for the real-thread lock-order tests: is another backend of this test database blocked
on a lock (a row lock, or another transaction's uncommitted insert of the same key) right now?

A test thread holding a lock waits on these until the other thread has run into it, so the
interleaving under test really happens instead of being left to the scheduler.
"""

from __future__ import annotations

import threading
import time

from django.db import connection

DEADLINE_SECONDS = 10


def someone_waits_on_a_lock() -> bool:
    """Whether another backend of this test database waits for a lock.

    Works inside a transaction: ``pg_locks`` is live, and ``pg_stat_activity`` (which names the
    database; other databases on the server are other people's) is re-read, where a transaction
    otherwise sees it as of its first read."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT count(*) FROM pg_locks AS l JOIN pg_stat_activity AS s ON s.pid = l.pid "
            "WHERE NOT l.granted AND l.pid <> pg_backend_pid() "
            "AND s.datname = current_database()"
        )
        return cur.fetchone()[0] > 0


def wait_for_a_lock_waiter(seconds: float = DEADLINE_SECONDS) -> bool:
    """Wait until another backend waits for a lock; False if none did within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if someone_waits_on_a_lock():
            return True
        time.sleep(0.02)
    return False


def run_threads(*targets, seconds: float = DEADLINE_SECONDS * 3) -> list[BaseException]:
    """Run each target on a thread of its own (its own database connection, closed when it
    ends), wait for all of them, and return what they raised (a test asserts it is empty)."""
    errors: list[BaseException] = []

    def guarded(target) -> None:
        try:
            target()
        except BaseException as exc:  # returned to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds)
    assert not any(t.is_alive() for t in threads), "a thread is still running: a lock wait?"
    return errors
