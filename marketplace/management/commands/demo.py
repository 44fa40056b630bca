"""``python manage.py demo``: a simulated crowd runs a job through the whole marketplace.

See ``marketplace/management/demo.py`` for what a run does; this command starts the local Stripe
server (``stripe_local``, a test double) in-process, shows progress bars, and prints the
summary. Run ``load_demo`` first (``make run`` does) to get the logins; each run adds one job.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from tqdm import tqdm

from marketplace.management.demo import DemoError, DemoOptions, DemoSummary, demo_run
from marketplace.money import format_money
from stripe_local import LocalStripe

BAR = 24
# A demo crowd earns cents each; the production minimum (PAYOUT_MINIMUM, 500) would pay nobody.
DEMO_PAYOUT_MINIMUM = 50


def bar(value: float, full: float = 1.0) -> str:
    """A text bar of ``value`` out of ``full`` (clamped)."""
    share = 0.0 if full <= 0 else max(0.0, min(value / full, 1.0))
    n = round(share * BAR)
    return "█" * n + "░" * (BAR - n)


def render(s: DemoSummary) -> list[str]:
    """The summary as lines of text (tested through the command's output)."""

    def money(v: int | None) -> str:
        return "n/a" if v is None else format_money(v, s.currency)

    def hourly(v: int | None) -> str:
        return "n/a" if v is None else f"{format_money(v, s.currency)}/h"

    lines = [
        f"Job #{s.job_id} {s.title}: {s.videos} video(s), {s.microtasks} microtasks "
        f"(+{s.gold_microtasks} gold), {s.submissions} submissions",
        f"  accuracy vs truth  {bar(s.accuracy_f1)} F1 {s.accuracy_f1:.3f}, "
        f"IoU {s.accuracy_iou:.3f} over {s.settled_microtasks} delivered microtasks",
        f"  replicas used      {bar(s.replicas_per_microtask or 0, s.overlap[1])} "
        f"{s.replicas_per_microtask} per microtask (overlap {s.overlap[0]}-{s.overlap[1]})",
        f"  cost vs budget     {bar(s.spent, s.budget)} {money(s.spent)} of {money(s.budget)} "
        f"(workers {money(s.paid_to_workers)}, platform {money(s.fees)} net of fair-pay top-ups)",
        f"  effective hourly   {bar(s.effective_hourly or 0, 2 * s.floor_hourly)} "
        f"{hourly(s.effective_hourly)} (floor {hourly(s.floor_hourly)}; the bar's middle)",
        f"  payouts            {s.payouts} paid, {money(s.payouts_amount)}, "
        f"{s.transfers} Stripe transfer(s)",
        f"  reviews open       {s.reviews_open}",
        "  exports            "
        + ", ".join(f"{fmt} {size:,} B" for fmt, size in s.exports.items())
        + f" ({s.export_counts['frames']} frames, {s.export_counts['objects']} objects, "
        f"{s.export_counts['tracks']} tracks)",
        "  workers:",
    ]
    for w in s.workers:
        state = "suspended" if w.suspended else "active"
        lines.append(
            f"    {w.username:<22} {w.profile:<8} {w.submissions:>3} submitted, "
            f"{w.approved:>3} approved, {w.rejected:>3} rejected, earned {money(w.earned)}, "
            f"paid out {money(w.paid_out)}, {hourly(w.effective_hourly)}, {state}"
        )
    held = all(s.invariants.values())
    lines.append(
        "  invariants         "
        + ("all held" if held else "BROKEN: ")
        + ", ".join(k for k, ok in s.invariants.items() if not ok)
    )
    return lines


class Command(BaseCommand):
    help = (
        "Run a simulated crowd through a new job end to end (funding on the local Stripe "
        "server, claims, consensus, trust, approval, payouts, exports) and print a summary."
    )

    def add_arguments(self, parser) -> None:
        d = DemoOptions()
        parser.add_argument("--videos", type=int, default=d.videos, help="videos to generate")
        parser.add_argument("--seconds", type=float, default=d.seconds, help="each video's length")
        parser.add_argument("--objects", type=int, default=d.objects, help="objects per video")
        parser.add_argument("--workers", type=int, default=d.workers, help="crowd size")
        parser.add_argument("--spammers", type=int, default=d.spammers, help="of the crowd")
        parser.add_argument("--sloppy", type=int, default=d.sloppy, help="of the crowd")
        parser.add_argument(
            "--type", dest="annotation_type", choices=("bbox", "track"), default="bbox"
        )
        parser.add_argument("--gold", dest="gold_share", type=float, default=d.gold_share)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument(
            "--payout-minimum",
            type=int,
            default=DEMO_PAYOUT_MINIMUM,
            help="PAYOUT_MINIMUM for this run (minor units): a small crowd earns little",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args, no_progress: bool = False, payout_minimum: int, **opts) -> None:
        options = DemoOptions(**{k: opts[k] for k in DemoOptions.__dataclass_fields__ if k in opts})
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if no_progress:
                return
            b = bars.get(stage)
            if b is None:
                for other in bars.values():  # one bar at a time: a new stage ends the last
                    other.close()
                b = bars[stage] = tqdm(total=total, desc=f"{stage:<9}", file=self.stderr)
            b.total = max(b.total or 0, total)
            b.n = done
            b.refresh()

        server = LocalStripe(api_key=settings.STRIPE_SECRET_KEY).start()
        try:
            with override_settings(
                STRIPE_API_BASE=server.api_base, PAYOUT_MINIMUM=max(1, payout_minimum)
            ):
                summary = demo_run(options=options, stripe=server, progress=progress)
        except DemoError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for b in bars.values():
                b.close()
            server.stop()
        for line in render(summary):
            self.stdout.write(line)
        self.stdout.write(
            "Log in as 'requester' to see the job, its quality report and the downloads, as "
            f"'{summary.workers[0].username}' to see a worker's earnings (password as load_demo's)."
        )
