"""The acts of ``cleanroom demo``, one function per party, each printing what that party sees."""

from __future__ import annotations

from decimal import Decimal

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import Progress

from cleanroom import crypto
from cleanroom.audit import AuditLog
from cleanroom.cli import demo_render as render
from cleanroom.cli._common import console
from cleanroom.cli._results import table
from cleanroom.client import Client
from cleanroom.errors import CleanroomError
from cleanroom.partners import load_partners

Step = Callable[[str], None]

COLLABORATION = "aurora-2026"
ANALYSTS = {"dealer": "northside-dealers", "brand": "aurora-motors"}


# --- partners ------------------------------------------------------------------------------------


def partner_side(w: Path, customers: int, seed: int, step: Step) -> dict[str, Any]:
    """Synthetic raw data with PII, keys, and partner-side preparation (nothing raw leaves)."""
    from cleanroom.keys import create_gateway_keys, create_salt, create_signing_key
    from cleanroom.prepare import prepare_partner
    from cleanroom.synth import generate

    step(f"Partners' raw data: {customers:,} synthetic customers with names, emails and phones (seed {seed})")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("synth", total=None)
        summary = generate(customers, seed, w / "raw", partners_dir=w / "partners",
                           progress=lambda s, d, t: bar.update(task, description=f"synth: {s}", completed=d, total=t))
    console.print(f"{summary.rows:,} raw rows in {len(summary.files)} files ({summary.seconds:.1f} s); ground truth kept aside")

    step("Keys: collaboration salt (partners only), gateway pepper + database key (operator only), Ed25519 keys per partner")
    keys = w / "keys"
    create_salt(keys / "salt.hex")
    create_gateway_keys(keys / "gateway.keys")
    for pid in sorted(load_partners(w / "partners")):
        for role in ("uploader", "compliance"):
            create_signing_key(w / "partners", pid, role, keys / f"{pid}-{role}.pem")
    console.print(f"salt, gateway keys and 8 signing keys in {keys}/ (0600); public keys registered in {w / 'partners'}/")

    step("Each partner prepares its data on its own machine: normalize, HMAC with the salt, drop PII, sign")
    salt = crypto.read_secret(keys / "salt.hex")
    rows, reasons = [], {}
    for pid, partner in sorted(load_partners(w / "partners").items()):
        key = crypto.read_signing_key(keys / f"{pid}-uploader.pem")
        s = prepare_partner(partner, salt, w / "raw", w / "prepared" / pid, key)
        for name, d in s.datasets.items():
            for reason, n in d.identity.email_unmatched.items():
                reasons[f"email {reason}"] = reasons.get(f"email {reason}", 0) + n
            for reason, n in d.identity.phone_unmatched.items():
                reasons[f"phone {reason}"] = reasons.get(f"phone {reason}", 0) + n
            rows.append([pid, name, d.rows_in, d.rows_out, d.identity.keyed_by_phone, d.identity.rows_without_identity])
    console.print(table("prepared datasets (no PII left)", ["partner", "dataset", "raw", "out", "by phone", "dropped"], rows))
    console.print("unusable identifiers (counted, never kept): " + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items()) if v))
    return dict(json.loads((w / "raw" / "ground_truth.json").read_text()))


def upload_all(w: Path, step: Step) -> None:
    """Each partner uploads its signed files; the gateway validates, re-keys with its pepper and encrypts."""
    from cleanroom.ingest import find_uploads, ingest_upload
    from cleanroom.settings import GatewaySecrets
    from cleanroom.store import Store

    step("Upload: signature, manifest, replay, schema, hid and PII checks; pepper re-keying; encrypted store")
    audit = AuditLog(w / "store" / "audit.jsonl")
    rows = []
    with Store.open(w / "store", GatewaySecrets.load(w / "keys" / "gateway.keys")) as store:
        for pid in sorted(p.name for p in (w / "prepared").iterdir()):
            for pair in find_uploads(w / "prepared" / pid):
                r = ingest_upload(store, w / "partners", pid, pair.arrow, pair.manifest, actor=pid, audit=audit)
                rows.append([pid, r.dataset, r.version, r.rows, r.new_persons])
        persons = store.person_count()
    console.print(table("store: active dataset versions", ["partner", "dataset", "version", "rows", "new persons"], rows))
    console.print(f"{persons:,} distinct persons (integer ids; no hid is stored in any dataset table)")
    _replay_rejected(w)


def _replay_rejected(w: Path) -> None:
    """Show two upload defences: the same signed upload again changes nothing (retries are safe),
    and a manifest nonce cannot vouch for other bytes, even signed by the partner's own key."""
    from cleanroom.ingest import find_uploads, ingest_upload
    from cleanroom.manifest import Manifest, manifest_path
    from cleanroom.settings import GatewaySecrets
    from cleanroom.store import Store

    pid = "northside-dealers"
    pairs = find_uploads(w / "prepared" / pid)
    pair, other = pairs[0], pairs[1]
    first = Manifest.read(pair.manifest)
    swapped = w / "replay-attempt" / pair.arrow.name
    swapped.parent.mkdir(exist_ok=True)
    swapped.write_bytes(other.arrow.read_bytes())
    forged = Manifest.new(pid, first.dataset, swapped, first.schema_hash, first.row_count).model_copy(update={"nonce": first.nonce})
    forged.signed_by(crypto.read_signing_key(w / "keys" / f"{pid}-uploader.pem")).write(manifest_path(swapped))
    with Store.open(w / "store", GatewaySecrets.load(w / "keys" / "gateway.keys")) as store:
        again = ingest_upload(store, w / "partners", pid, pair.arrow, pair.manifest, actor=pid)
        console.print(f"re-uploading {pair.manifest.name} is idempotent: version {again.version} stays active, nothing new stored",
                      highlight=False, markup=False)
        try:
            ingest_upload(store, w / "partners", pid, swapped, manifest_path(swapped), actor=pid)
        except CleanroomError as exc:
            console.print(f"its nonce signed again for other bytes is refused: [{exc.code}]", highlight=False, markup=False)


def sign_and_activate(w: Path, step: Step) -> None:
    """Every compliance officer signs the same canonical bytes; only then can the policy be activated."""
    from cleanroom.policy import activate, lint, sign_policy, verify_signatures
    from cleanroom.policy.load import load_policy

    step("Compliance: lint, sign by all four partners, verify, activate (audited)")
    partners = load_partners(w / "partners")
    path = w / "policies" / f"{COLLABORATION}.yaml"
    issues = lint(path, partners)
    console.print(f"lint: {sum(i.level == 'error' for i in issues)} errors, {sum(i.level == 'warning' for i in issues)} warnings")
    for pid in sorted(partners):
        key = crypto.read_signing_key(w / "keys" / f"{pid}-compliance.pem")
        sign_policy(path, key, pid, partners, store_dir=w / "store", actor=pid)
    report = verify_signatures(path, load_policy(path, partners), partners)
    console.print(f"signed by: {', '.join(report.signed)}; missing: {', '.join(report.missing) or 'nobody'}")
    act = activate(path, w / "store", partners, actor="demo-operator")
    console.print(f"active policy {act.collaboration} @ {act.content_hash[:16]}…")


def api_keys(w: Path, step: Step) -> dict[str, str]:
    """Bearer keys for one dealer analyst, one brand analyst and the brand's compliance officer."""
    from cleanroom.gateway.auth import ApiKeys

    step("API keys (only their hashes are stored)")
    keys = ApiKeys(w / "store", load_partners(w / "partners"))
    out = {who: keys.create_key(pid, "analyst", f"demo {who} analyst", actor="demo-operator")[1] for who, pid in ANALYSTS.items()}
    out["compliance"] = keys.create_key("aurora-motors", "compliance", "demo compliance", actor="demo-operator")[1]
    out["report"] = keys.create_key("aurora-motors", "report", "demo monthly report job", actor="demo-operator")[1]
    console.print("analyst keys for northside-dealers (dealer) and aurora-motors (brand); a compliance key and a report key for aurora-motors")
    return out


# --- analysts --------------------------------------------------------------------------------------


def analyst_queries(url: str, keys: dict[str, str], truth: dict[str, Any], step: Step) -> None:
    for who, template, params, eps in render.PLAN:
        step(f"{who} analyst ({ANALYSTS[who]}): {template} {json.dumps(params) if params else ''} at epsilon {eps}")
        with Client(url, keys[who]) as client:
            try:
                result = client.query(COLLABORATION, template, params, eps)
            except CleanroomError as exc:
                console.print(f"refused: [{exc.code}] {exc.message}", style="yellow", highlight=False, markup=False)
                continue
        render.show(result, truth, template, params)


def closing(url: str, keys: dict[str, str], w: Path, step: Step) -> None:
    step("Repeat a query: same numbers, no new charge (averaging attacks gain nothing)")
    who, template, params, eps = render.PLAN[0]
    with Client(url, keys[who]) as client:
        again = client.query(COLLABORATION, template, params, eps)
        console.print(f"cached={again.cached}, epsilon charged {again.epsilon_charged}")
        step("Budgets left this month")
        for name in ANALYSTS:
            with Client(url, keys[name]) as c:
                b = c.budget(COLLABORATION)
            console.print(f"{b.partner}: spent {b.partner_spent:g} of {b.partner_limit:g}, {b.partner_remaining:g} left "
                          f"(the collaboration cap holds {b.reserved_for_report:g} back for the monthly report); collaboration lifetime {b.lifetime_epsilon:g}")
    step("Audit: what the brand's compliance officer sees, and the hash chain")
    with Client(url, keys["compliance"]) as c:
        page = c.audit(limit=1000)
    kinds: dict[str, int] = {}
    for e in page.entries:
        kinds[e.event] = kinds.get(e.event, 0) + 1
    console.print(f"{len(page.entries)} entries visible to aurora-motors: {kinds}; chain intact: {page.chain_ok} ({page.chain_entries} entries)")


def monthly_report(url: str, keys: dict[str, str], w: Path, truth: dict[str, Any], step: Step) -> Path:
    """The unattended job: the data's last complete month, released once, one folder per recipient."""
    from cleanroom.reports.job import run_monthly

    month = str(truth["end_date"])[:7]
    out = w / "reports"
    step(f"The monthly report for {month} (the job: cleanroom report monthly --collaboration {COLLABORATION} --month {month} --out {out})")
    with Client(url, keys["report"], timeout=600) as client:
        first = run_monthly(client, COLLABORATION, month, out)
        again = [client.report_section(COLLABORATION, month, name) for name in first.charged]
        plan = client.report_plan(COLLABORATION, month)
    spent = sum((Decimal(e) for e in first.charged.values()), Decimal(0))
    console.print(f"{len(first.charged)} sections released once for the whole collaboration: epsilon {spent.normalize()} charged to the report reservation")
    same = sum(1 for a, name in zip(again, first.charged, strict=True) if a.cached)
    console.print(f"asking again for {month}: {same} of {len(again)} sections served from the store, epsilon charged 0 "
                  f"(report account spent {plan.spent} of {plan.reservation})")
    for recipient in first.recipients:
        console.print(f"  {recipient}: {first.directory / recipient}/ (report.html, report.pdf, results.csv, results.parquet, manifest.json)",
                      highlight=False)
    return first.directory
