"""Time the gateway's release path in-process, step by step, and once over real HTTP.

The release path is the product's own ``release_query`` over an opened ``Store`` with the active
policy, exactly as ``Services.release_query`` calls it (policy load included). To see where the
time goes, the steps it calls are wrapped in stopwatches for the duration of a measurement: each
wrapper calls the real function and adds its wall time to a label. Nothing is replaced, skipped
or faked; the wrappers cost a few microseconds per query (two ``perf_counter`` calls per step).
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cleanroom.dp
import cleanroom.gateway.release as rel
from cleanroom.client import Client
from cleanroom.errors import CleanroomError
from cleanroom.gateway import GatewayConfig, Services, create_app
from cleanroom.gateway.auth import Principal
from cleanroom.gateway.models import QueryRequest
from cleanroom.gateway.release import ReleaseContext
from cleanroom.partners import Partner
from cleanroom.policy import active_policy

BRAND = "aurora-motors"  # the brand's analysts may run every template
PRINCIPAL = Principal(key_id="bench", partner=BRAND, partner_role="brand", role="analyst")

# label -> (owner, attribute); owner "module" is cleanroom.gateway.release, "dp" is cleanroom.dp
STEPS: tuple[tuple[str, str, str], ...] = (
    ("compile", "module", "build_scope"),
    ("compile", "module", "compile_query"),
    ("compile", "module", "effective_rules"),
    ("consent horizon", "module", "_consent_horizon"),
    ("cache key", "module", "_cache_key"),
    ("cache lookup", "ledger", "cached"),
    ("budget charge", "ledger", "charge"),
    ("reader + views", "store", "reader"),
    ("DuckDB execute", "module", "execute"),
    ("OpenDP noise", "dp", "release"),
    ("present", "module", "_payload"),
    ("result store", "ledger", "store_result"),
    ("audit append", "audit", "append"),
)
LABELS = ("policy load", *dict.fromkeys(label for label, _, _ in STEPS))


class Stopwatch:
    """Seconds per label for one query, exclusive: a step timed inside another counts only once.

    (``_consent_horizon`` opens its own reader: that time goes to "reader + views", the rest
    of it to "consent horizon".)
    """

    def __init__(self) -> None:
        self.acc: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []  # per open step: [started, seconds spent in nested steps]

    def _start(self) -> None:
        self._stack.append([time.perf_counter(), 0.0])

    def _stop(self, label: str) -> None:
        started, nested = self._stack.pop()
        elapsed = time.perf_counter() - started
        self.acc[label] += elapsed - nested
        if self._stack:
            self._stack[-1][1] += elapsed

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._start()
            try:
                return fn(*args, **kwargs)
            finally:
                self._stop(label)

        return timed

    def wrap_context(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """A context manager's enter and exit timed, not the body it runs (that is execute)."""

        @contextmanager
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self._start()
            with fn(*args, **kwargs) as value:
                self._stop(label)
                yield value
                self._start()
            self._stop(label)

        return timed


class Instrumented:
    """The release path with stopwatches around its steps while inside ``with``; restored after."""

    def __init__(self, ctx: ReleaseContext) -> None:
        self.ctx, self.watch = ctx, Stopwatch()
        self._owners = {"module": rel, "dp": cleanroom.dp, "ledger": ctx.ledger, "audit": ctx.audit, "store": ctx.store}
        self._saved: list[tuple[Any, str, Any, bool]] = []

    def __enter__(self) -> Instrumented:
        for label, owner_name, attr in STEPS:
            owner = self._owners[owner_name]
            if not hasattr(owner, attr):  # a step the release path no longer has: its time shows as "other"
                continue
            original = getattr(owner, attr)
            self._saved.append((owner, attr, original, attr in vars(owner)))
            wrap = self.watch.wrap_context if attr == "reader" else self.watch.wrap
            setattr(owner, attr, wrap(label, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original, own in reversed(self._saved):
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)  # the wrapper was an instance attribute shadowing the class's method
        self._saved.clear()


class Releaser:
    """One opened collaboration: policy load + ``release_query`` per call, with a fresh epsilon each time."""

    def __init__(self, ctx: ReleaseContext, collaboration: str, policies: Path, store_dir: Path, partners: dict[str, Partner]) -> None:
        self.ctx, self.collaboration = ctx, collaboration
        self.policies, self.store_dir, self.partners = policies, store_dir, partners
        self._n = len(ctx.ledger.charges(collaboration))  # continue after earlier runs on a reused store

    def next_epsilon(self) -> float:
        """0.01 plus a micro-epsilon per query: every call is a new release (no cache hit)."""
        self._n += 1
        return round(0.01 + self._n * 1e-6, 6)

    def once(self, template: str, params: dict[str, Any]) -> dict[str, float]:
        """One release, timed; returns seconds per label plus ``total`` and ``other``."""
        with Instrumented(self.ctx) as inst:
            started = time.perf_counter()
            policy = active_policy(self.collaboration, self.policies, self.store_dir, self.partners)
            loaded = time.perf_counter()
            request = QueryRequest(collaboration=self.collaboration, template=template, params=params, epsilon=self.next_epsilon())
            response = rel.release_query(self.ctx, policy, PRINCIPAL, request)
            total = time.perf_counter() - started
        if response.cached:
            raise CleanroomError("internal.invariant", f"benchmark release of {template} was served from the cache")
        out = {label: inst.watch.acc.get(label, 0.0) for label in LABELS}
        out["policy load"] = loaded - started
        out["total"] = total
        out["other"] = total - sum(out[label] for label in LABELS)
        return out


# --- over HTTP ---------------------------------------------------------------------------------


@contextmanager
def serving(config: GatewayConfig) -> Iterator[tuple[str, Services]]:
    """The real gateway app on uvicorn in a thread, on a loopback socket bound here (port 0).

    In this process (not ``cleanroom serve`` in another) so that one Store serves both the HTTP
    requests and the in-process releases they are compared with, run in alternation: a database
    file can be attached by one process at a time.
    """
    import uvicorn

    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio only sets TCP_NODELAY on sockets whose proto is TCP
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", server_header=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="bench-gateway")
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        _wait_healthy(url, thread)
        yield url, app.state.services
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _wait_healthy(url: str, thread: threading.Thread) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise CleanroomError("config.invalid", "the benchmark gateway exited during start-up")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise CleanroomError("config.invalid", "the benchmark gateway did not become healthy within 60 s")


def http_once(client: Client, collaboration: str, template: str, params: dict[str, Any], epsilon: float) -> float:
    """Wall seconds of one query through the typed client, as an analyst's program sees it."""
    started = time.perf_counter()
    result = client.query(collaboration, template, params, epsilon)
    seconds = time.perf_counter() - started
    if result.cached:
        raise CleanroomError("internal.invariant", f"benchmark HTTP query of {template} was served from the cache")
    return seconds


__all__ = ["LABELS", "PRINCIPAL", "Instrumented", "Releaser", "http_once", "serving"]
