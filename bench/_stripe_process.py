"""The local Stripe server in its own process, for benchmarks.

In the benchmark's own process the server's threads share the GIL with the code under test:
its handling time then includes waiting for our threads, and our time includes its CPU. In a
separate process each side's time is its own; the server still measures its handling itself
(``busy_union_seconds``) and reports it through a pipe.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any


def _serve(conn, api_key: str) -> None:
    from stripe_local import LocalStripe
    from stripe_local.server import _template

    server = LocalStripe(api_key=api_key, auto_deliver=False)
    server.state.available = 10**12
    server.start()
    conn.send(server.api_base)
    while True:
        cmd, arg = conn.recv()
        if cmd == "accounts":  # arg connected accounts, payouts enabled: their ids
            ids = []
            with server.state.lock:
                for _ in range(arg):
                    acct = _template("account")
                    acct_id = server.state.new_id("acct")
                    acct.update(
                        id=acct_id,
                        type="express",
                        payouts_enabled=True,
                        capabilities={"transfers": "active"},
                    )
                    server.state.accounts[acct_id] = acct
                    ids.append(acct_id)
            conn.send(ids)
        elif cmd == "stats":
            conn.send(
                {
                    "busy_seconds": server.busy_seconds,
                    "busy_cpu_seconds": server.busy_cpu_seconds,
                    "busy_union_seconds": server.busy_union_seconds,
                    "transfers": len(server.state.transfers),
                    "requests": len(server.request_log),
                }
            )
        elif cmd == "stop":
            server.stop()
            conn.send(None)
            return


class StripeProcess:
    """``with StripeProcess(api_key) as s:`` — ``s.api_base``, ``s.accounts(n)``, ``s.stats()``."""

    def __init__(self, api_key: str) -> None:
        ctx = mp.get_context("spawn")  # a clean interpreter: no inherited DB connections
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, api_key), daemon=True)
        self.api_base = ""

    def start(self) -> StripeProcess:
        self._proc.start()
        self.api_base = self._conn.recv()
        return self

    def _ask(self, cmd: str, arg: Any = None) -> Any:
        self._conn.send((cmd, arg))
        return self._conn.recv()

    def accounts(self, n: int) -> list[str]:
        return self._ask("accounts", n)

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

    def stop(self) -> None:
        if self._proc.is_alive():
            self._ask("stop")
            self._proc.join(timeout=10)

    def __enter__(self) -> StripeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
