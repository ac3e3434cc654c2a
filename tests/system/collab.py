"""A complete, signed and activated collaboration in a temp directory, built with the library.

The same story as ``cleanroom demo`` (cli/demo_steps.py), minus the printing, so system tests
can start a real gateway over it: raw partner data (synthetic, or written by the test) ->
salt, gateway keys and Ed25519 keys per partner -> partner-side ``prepare`` -> ``ingest_upload``
into the encrypted store -> the policy, edited BEFORE signing -> signed by every compliance
officer -> activated. Nothing is mocked; every key, file and signature is real.

Imported by name (test directories are not packages)::

    collab = build_collab(tmp, repo, raw_source=synth_dir, policy_overrides={"privacy": {...}})
    key = collab.mint("northside-dealers", "analyst")
    oracle = ExactOracle(collab)          # the exact engine answer, on a private copy of the store

Also here, because every release test needs them: ``serve`` (uvicorn in a thread over a config),
``ServerProcess`` (``cleanroom serve`` in a child process, for kill -9) and the checks every
released body must pass (no hid-shaped token, an interval beside every number).
"""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import uvicorn
import yaml
from _live_helpers import LiveGateway
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cleanroom import crypto
from cleanroom.aggregate import ExactResult
from cleanroom.audit import AuditLog
from cleanroom.budget import Ledger
from cleanroom.engine import compile_query, execute, views_for
from cleanroom.gateway import ApiKeys, GatewayConfig, Limits, create_app
from cleanroom.gateway.release import build_scope
from cleanroom.ingest import UploadPair, find_uploads, ingest_upload
from cleanroom.keys import create_gateway_keys, create_salt, create_signing_key
from cleanroom.partners import Partner, load_partners
from cleanroom.policy import activate, lint, sign_policy
from cleanroom.policy.activation import active_policy
from cleanroom.prepare import prepare_partner
from cleanroom.settings import GatewaySecrets
from cleanroom.store import Store
from cleanroom.synth import GROUND_TRUTH, generate

COLLABORATION = "aurora-2026"
SCHEMA_LINE = "# yaml-language-server: $schema=policy.schema.json\n"
RawWriter = Callable[[Path], None]
PolicyEdit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Collab:
    """Where everything of one built collaboration lives, and the handles tests need."""

    root: Path
    truth: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def partners_dir(self) -> Path:
        return self.root / "partners"

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    @property
    def policy_path(self) -> Path:
        return self.policies / f"{COLLABORATION}.yaml"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def keys_file(self) -> Path:
        return self.keys_dir / "gateway.keys"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared"

    def partners(self) -> dict[str, Partner]:
        return load_partners(self.partners_dir)

    def secrets(self) -> GatewaySecrets:
        return GatewaySecrets.load(self.keys_file)

    def signing_key(self, partner: str, role: str) -> Ed25519PrivateKey:
        return crypto.read_signing_key(self.keys_dir / f"{partner}-{role}.pem")

    def config(self, limits: Limits | None = None) -> GatewayConfig:
        return GatewayConfig(store=self.store, partners=self.partners_dir, policies=self.policies, keys_file=self.keys_file,
                             limits=limits or Limits())

    def serve_args(self) -> list[str]:
        """The ``cleanroom serve`` options for this collaboration (without --port)."""
        return ["--store", str(self.store), "--partners", str(self.partners_dir), "--policies", str(self.policies),
                "--keys-file", str(self.keys_file)]

    def mint(self, partner: str, role: str, label: str = "system-test") -> str:
        """A fresh bearer key (only its hash is stored; works while a gateway runs)."""
        return ApiKeys(self.store, self.partners()).create_key(partner, role, label, actor="system-test")[1]

    def ledger(self) -> Ledger:
        return Ledger(self.store / "budget.sqlite")

    def audit(self) -> AuditLog:
        return AuditLog(self.store / "audit.jsonl")

    def uploads(self, partner: str, tag: str = "") -> dict[str, UploadPair]:
        """The prepared (Arrow, manifest) pairs of ``partner`` by dataset name."""
        folder = self.prepared / (f"{partner}-{tag}" if tag else partner)
        return {_dataset_of(pair): pair for pair in find_uploads(folder)}

    def reprepare(self, partner: str, tag: str) -> dict[str, UploadPair]:
        """Prepare ``partner`` again from its (edited) raw files into a new folder: new manifests, new nonces."""
        _prepare_one(self, partner, self.prepared / f"{partner}-{tag}")
        return self.uploads(partner, tag)

    def partner_hids(self) -> set[str]:
        """Every partner-side hid of every prepared file (what must never come back to anyone)."""
        hids: set[str] = set()
        for manifest in self.prepared.rglob("*.manifest.json"):
            table = _read_arrow(find_uploads(manifest)[0].arrow)
            hids.update(h for h in table.column("hid").to_pylist() if h)
        return hids

    def all_hids(self) -> set[str]:
        """Partner-side hids plus the peppered form the store keys them to (crypto.Keyer, as ingest does)."""
        partner = self.partner_hids()
        keyer = crypto.Keyer(self.secrets().pepper)
        return partner | {keyer.hex(h) for h in partner}


def _dataset_of(pair: UploadPair) -> str:
    return pair.arrow.name.split(".")[0]


def _read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


# --- building --------------------------------------------------------------------------------------


def synth_raw(dest: Path, repo: Path, customers: int, seed: int = 7) -> Path:
    """Synthetic raw partner CSVs plus ground truth in ``dest`` (generate once, copy per collaboration)."""
    generate(customers, seed, dest, partners_dir=repo / "partners")
    return dest


def build_collab(
    root: Path,
    repo: Path,
    *,
    raw_source: Path | None = None,
    write_raw: RawWriter | None = None,
    policy_overrides: Mapping[str, Any] | None = None,
    policy_edit: PolicyEdit | None = None,
    prepare_workers: int = 1,
    allow_shrink: bool = False,
) -> Collab:
    """Build, sign and activate a collaboration in ``root`` (must not exist yet).

    Raw data comes from ``raw_source`` (a ``synth_raw`` folder, copied) or ``write_raw(raw_dir)``.
    ``policy_overrides`` is deep-merged into the shipped policy and ``policy_edit`` may change it
    further, both BEFORE anyone signs, so every partner signs the edited bytes.
    """
    collab = _layout(root, repo)
    _raw_data(collab, raw_source, write_raw)
    _keys(collab)
    for pid in sorted(collab.partners()):
        _prepare_one(collab, pid, collab.prepared / pid, prepare_workers, allow_shrink=allow_shrink)
    _upload_all(collab)
    _write_policy(collab, policy_overrides or {}, policy_edit)
    _sign_and_activate(collab)
    truth_file = collab.raw / GROUND_TRUTH
    truth = _load_json(truth_file) if truth_file.exists() else None
    return Collab(root=collab.root, truth=truth)


def _layout(root: Path, repo: Path) -> Collab:
    root.mkdir(parents=True)
    for source in ("partners", "policies"):
        shutil.copytree(repo / source, root / source, ignore=shutil.ignore_patterns("*.sig", "*.sig.json", "__pycache__"))
    return Collab(root=root.resolve())


def _raw_data(collab: Collab, raw_source: Path | None, write_raw: RawWriter | None) -> None:
    if (raw_source is None) == (write_raw is None):
        raise ValueError("pass exactly one of raw_source and write_raw")
    if raw_source is not None:
        shutil.copytree(raw_source, collab.raw)
    else:
        collab.raw.mkdir()
        assert write_raw is not None
        write_raw(collab.raw)


def _keys(collab: Collab) -> None:
    """Salt for the partners, pepper + database key for the operator, Ed25519 keys per partner and role."""
    collab.keys_dir.mkdir(mode=0o700)
    create_salt(collab.keys_dir / "salt.hex")
    create_gateway_keys(collab.keys_file)
    for pid in sorted(collab.partners()):
        for role in ("uploader", "compliance"):
            create_signing_key(collab.partners_dir, pid, role, collab.keys_dir / f"{pid}-{role}.pem")


def _prepare_one(collab: Collab, pid: str, out_dir: Path, workers: int = 1, *, allow_shrink: bool = False) -> None:
    """``allow_shrink`` signs the partner's consent to an empty (or much smaller) version into its manifests."""
    salt = crypto.read_secret(collab.keys_dir / "salt.hex")
    prepare_partner(collab.partners()[pid], salt, collab.raw, out_dir, collab.signing_key(pid, "uploader"), workers=workers,
                    allow_shrink=allow_shrink)


def _upload_all(collab: Collab) -> None:
    audit = collab.audit()
    with Store.open(collab.store, collab.secrets()) as store:
        for pid in sorted(collab.partners()):
            for pair in collab.uploads(pid).values():
                ingest_upload(store, collab.partners_dir, pid, pair.arrow, pair.manifest, actor=pid, audit=audit)


def _write_policy(collab: Collab, overrides: Mapping[str, Any], edit: PolicyEdit | None) -> None:
    """Edit the copied policy as data (comments are not signed anyway) and lint it: no errors allowed."""
    data = yaml.safe_load(collab.policy_path.read_text())
    data = deep_merge(data, overrides)
    if edit is not None:
        edit(data)
    collab.policy_path.write_text(SCHEMA_LINE + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    errors = [i for i in lint(collab.policy_path, collab.partners()) if i.level == "error"]
    if errors:
        raise ValueError(f"the edited test policy does not lint: {[str(i) for i in errors]}")


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _sign_and_activate(collab: Collab) -> None:
    partners = collab.partners()
    for pid in sorted(partners):
        sign_policy(collab.policy_path, collab.signing_key(pid, "compliance"), pid, partners, store_dir=collab.store, actor=pid)
    activate(collab.policy_path, collab.store, partners, actor="system-test")


def _load_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


# --- raw CSVs written by a test ---------------------------------------------------------------------

IDENTITY_HEADER = ["crm_id", "first_name", "last_name", "email", "phone"]


def write_csv(path: Path, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    """A raw partner CSV (identity columns first, as partners export them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


# --- real servers ------------------------------------------------------------------------------------

STARTUP_TIMEOUT_S = 30.0


def _wait_healthy(url: str, alive: Callable[[], bool], ready: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the gateway for {url} exited during start-up")
        if ready():
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.02)
    raise RuntimeError(f"gateway at {url} not healthy after {STARTUP_TIMEOUT_S}s")


@contextmanager
def serve(config: GatewayConfig) -> Iterator[LiveGateway]:
    """A real uvicorn server over ``config`` on a free loopback port, in a thread; stopped on exit.

    The socket is bound here (port 0) and handed to uvicorn: no race between choosing and binding.
    """
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # with the protocol given, asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", server_header=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-test-{port}")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, thread.is_alive, lambda: server.started)
        yield LiveGateway(url=url, config=config, keys=app.state.services.keys)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """``cleanroom serve`` in a child process (so a test can kill -9 it), logging to ``log``."""

    collab: Collab
    log: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.port = free_port()
        cmd = [sys.executable, "-m", "cleanroom.cli.main", "serve", "--port", str(self.port), *self.collab.serve_args()]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        proc = self.proc
        _wait_healthy(self.url, lambda: proc.poll() is None)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no chance to finish what it was doing."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self.wait()

    def wait(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


# --- what a released body may and may not contain ------------------------------------------------

HEX64 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
RATIO_COLUMNS = frozenset({"conversion", "match_rate_a", "match_rate_b", "seen_again_rate"})


def hex64_tokens(text: str) -> set[str]:
    """Every standalone 64-hex token in ``text`` (the shape of a hid, peppered or not)."""
    return {m.lower() for m in HEX64.findall(text)}


def raw_identifiers(raw_dir: Path) -> set[str]:
    """The partners' raw CRM ids and e-mail addresses (from the raw CSVs): never in any answer."""
    found: set[str] = set()
    for path in raw_dir.rglob("*.csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                found.update(v.strip() for k, v in row.items() if k in ("crm_id", "email") and v and v.strip())
    return found


def records(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a query response as dicts keyed by column."""
    return [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]


def check_intervals(body: Mapping[str, Any]) -> int:
    """Every released number has a 95% interval around it; returns how many numbers were checked.

    A ratio may have no upper end (its denominator's interval reaches 0): documented in present.py.
    """
    columns = set(body["columns"])
    checked = 0
    for row in records(body):
        for column, value in row.items():
            if column.endswith("_ci95") or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            assert f"{column}_ci95" in columns, f"{column} has no interval column"
            low, high = row[f"{column}_ci95"]
            assert low is not None and low <= value + 1e-9, (column, value, low)
            assert (high is None and column in RATIO_COLUMNS) or (high is not None and value <= high + 1e-9), (column, value, high)
            checked += 1
    return checked


# --- the exact answer, for comparison only -----------------------------------------------------------


class ExactOracle:
    """The engine's EXACT answer for a query, computed in the test process on a copy of the store.

    The copy is taken when the oracle is made (before the gateway has changed anything), so it
    never shares a database file with the running gateway. Exact answers exist only here, to show
    that what the gateway released differs from them.
    """

    def __init__(self, collab: Collab) -> None:
        self.collab = collab
        copy_dir = collab.root / "oracle-store"
        shutil.copytree(collab.store, copy_dir, ignore=shutil.ignore_patterns("*.sqlite*", "audit.jsonl", "incoming*"))
        self.store = Store.open(copy_dir, collab.secrets())
        self.partners = collab.partners()

    def exact(self, partner: str, template: str, params: dict[str, Any]) -> ExactResult:
        policy = active_policy(COLLABORATION, self.collab.policies, self.collab.store, self.partners)
        role = self.partners[partner].role
        scope = build_scope(policy, self.partners, role, policy.template_rule(template), datetime.now(UTC))
        compiled = compile_query(template, params, scope)
        with self.store.reader(views_for(scope)) as con:
            return execute(compiled, con)

    def close(self) -> None:
        self.store.close()


__all__ = [
    "COLLABORATION", "Collab", "ExactOracle", "build_collab", "check_intervals", "deep_merge", "hex64_tokens", "raw_identifiers",
    "records", "serve", "ServerProcess", "synth_raw", "write_csv",
]
