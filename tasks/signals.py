"""News this app sends upwards (quality listens; ``tasks`` never imports it for these).

Both are sent inside the transaction (or right after the statement) that made the change, so a
receiver's writes commit with it.
"""

from __future__ import annotations

from django.dispatch import Signal

# A worker reported more active time than can be credited (beyond the tolerance): a fraud signal.
# Sent with ``assignment`` (an Assignment with its microtask and job loaded), ``credit`` (the
# ``tasks.worktime.Credit``: reported, credited, elapsed, wall clock, others) and ``at``.
time_overreported = Signal()

# A worker passed the qualification test that ends a suspension from a type (``tasks.suspensions``).
# Sent with ``worker`` and ``annotation_type``.
qualification_reinstated = Signal()
