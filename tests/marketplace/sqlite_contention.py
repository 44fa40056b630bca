"""Run by ``test_embedded_sqlite.py`` in a process of its own, on an SQLite file: threads that each
read and then write inside one transaction, while another thread holds the write lock a while
(the shape of a webhook arriving while a worker's page saves). Prints one JSON line: how many
writes landed and the errors seen.

``--deferred`` puts back SQLite's default transactions without a busy timeout (what the embedded
settings replace), to show the test can fail.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings.local")

THREADS, ROUNDS = 8, 15


def main() -> None:
    import django
    from django.conf import settings

    if "--deferred" in sys.argv:
        settings.DATABASES["default"]["OPTIONS"] = {"timeout": 0.01}
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from payments.models import AuditLog

    call_command("migrate", verbosity=0)
    connection.close()
    errors: list[str] = []
    start = threading.Barrier(THREADS + 1)

    def hold_the_lock() -> None:
        start.wait()
        try:
            for _ in range(3):
                with transaction.atomic():
                    AuditLog.objects.create(action="test.holder")
                    time.sleep(0.3)  # a long write: the others must wait, not fail
        except Exception as exc:  # reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def worker(n: int) -> None:
        start.wait()
        try:
            for i in range(ROUNDS):
                with transaction.atomic():
                    AuditLog.objects.filter(action="test.write").count()  # read, then write
                    time.sleep(0.002)
                    AuditLog.objects.create(action="test.write", reason=f"{n}-{i}")
        except Exception as exc:  # reported to the test
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=hold_the_lock)]
    threads += [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = cursor.fetchone()[0]
    print(
        json.dumps(
            {
                "writes": AuditLog.objects.filter(action="test.write").count(),
                "expected": THREADS * ROUNDS,
                "errors": errors,
                "journal_mode": journal,
            }
        )
    )


if __name__ == "__main__":
    main()
