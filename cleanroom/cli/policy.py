"""CLI commands: ``cleanroom policy lint | schema | diff | sign | verify | activate | status``.

The workflow of docs/guides/compliance-workflow.md: edit -> lint -> diff -> sign (each partner)
-> verify -> activate. Commands parse, call :mod:`cleanroom.policy` and print; no logic here.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from cleanroom.cli._common import JsonOpt, PartnersOpt, PoliciesOpt, StoreOpt, emit_json, handle_errors, paths
from cleanroom.crypto import read_signing_key
from cleanroom.partners import Partner, load_partners
from cleanroom.policy import (
    activate,
    active_policy,
    active_record,
    content_hash,
    decimal_text,
    diff_policies,
    effective_by_partner,
    load_policy,
    schema_text,
    sign_policy,
    verify_signatures,
)
from cleanroom.policy.issues import Issue, errors_of, warnings_of
from cleanroom.policy.lint import check_file
from cleanroom.policy.model import Policy
from cleanroom.policy.signatures import SignatureReport

app = typer.Typer(help="Policy as code: lint, diff, sign, verify and activate collaboration policies.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="Policy file, e.g. policies/aurora-2026.yaml.", show_default=False)]
STATUS_STYLE = {"valid": "green", "missing": "yellow", "stale": "yellow", "invalid": "red", "unexpected": "bright_black"}


def _partners(directory: Path | None) -> dict[str, Partner]:
    return load_partners(paths(partners=directory).partners)


def _echo(text: str, color: str | None = None, bold: bool = False) -> None:
    typer.echo(typer.style(text, fg=color, bold=bold) if color else text)


# --- lint ------------------------------------------------------------------------------------------


@app.command("lint")
@handle_errors
def lint_cmd(
    file: FileArg,
    partners: PartnersOpt = None,
    effective: Annotated[bool, typer.Option("--effective", help="Also show the effective rules (strictest of policy and partner restrictions).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit non-zero on warnings too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a policy against partners/ and print EVERY problem with file, line, key and hint.

    Exit status: 0 when there is no error (warnings allowed unless --strict), 1 otherwise.
    """
    known = _partners(partners)
    issues, policy = check_file(file, known)
    rules = effective_by_partner(policy, known) if (effective and policy is not None) else None
    if as_json:
        emit_json(_lint_json(file, issues, policy, rules))
    else:
        _print_lint(file, issues, policy)
        if rules is not None and policy is not None:
            _print_effective(policy, rules)
    failed = bool(errors_of(issues)) or (strict and bool(warnings_of(issues)))
    raise typer.Exit(1 if failed else 0)


def _lint_json(file: Path, issues: list[Issue], policy: Policy | None, rules: dict | None) -> dict:  # type: ignore[type-arg]
    out = {
        "file": str(file),
        "ok": not errors_of(issues),
        "errors": len(errors_of(issues)),
        "warnings": len(warnings_of(issues)),
        "issues": [i.model_dump() for i in issues],
        "content_hash": content_hash(policy) if policy is not None else None,
    }
    if rules is not None:
        out["effective"] = {k: v.model_dump(mode="json") for k, v in rules.items()}
    return out


def _print_lint(file: Path, issues: list[Issue], policy: Policy | None) -> None:
    for issue in issues:
        _echo(issue.render(), "red" if issue.level == "error" else "yellow")
    n_err, n_warn = len(errors_of(issues)), len(warnings_of(issues))
    if n_err:
        _echo(f"{file}: {n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}", "red", bold=True)
    elif policy is not None:
        _echo(f"{file}: valid, {n_warn} warning{'s' * (n_warn != 1)} (content hash {content_hash(policy)})", "green", bold=True)


def _print_effective(policy: Policy, rules: dict) -> None:  # type: ignore[type-arg]
    base = policy.privacy
    _echo("\nEffective rules (the strictest of the policy and each data owner's [restrictions]):", bold=True)
    _echo(f"  policy                       min_threshold {base.min_threshold}; max_epsilon_per_query {decimal_text(base.max_epsilon_per_query)}; dimensions: all {len(policy.dimensions)}")
    for scope, r in rules.items():
        label = "queries over all datasets" if scope == "*" else f"{scope} datasets"
        threshold = _binding(r.min_threshold, r.binding["min_threshold"])
        epsilon = _binding(decimal_text(r.max_epsilon_per_query), r.binding["max_epsilon_per_query"])
        narrowed = [p for p in r.binding["dimensions"] if p != "policy"]
        dims = f"only {', '.join(r.dimensions)} (narrowed by {', '.join(narrowed)})" if narrowed else f"all {len(r.dimensions)}"
        _echo(f"  {label:<28} min_threshold {threshold}; max_epsilon_per_query {epsilon}; dimensions: {dims}")


def _binding(value: object, by: list[str]) -> str:
    stricter = [p for p in by if p != "policy"]
    return f"{value} ({', '.join(stricter)} [restrictions])" if stricter and "policy" not in by else str(value)


# --- schema --------------------------------------------------------------------------------------


@app.command("schema")
@handle_errors
def schema_cmd(
    out: Annotated[Path | None, typer.Option("--out", help="Write the schema to this file (e.g. policies/policy.schema.json) instead of printing it.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when --out differs from the generated schema (for CI).")] = False,
) -> None:
    """Print or write the JSON Schema of policy files, generated from the model."""
    text = schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            _echo(f"{out} is stale: run cleanroom policy schema --out {out}", "red")
            raise typer.Exit(1)
        _echo(f"{out} is up to date", "green")
        return
    out.write_text(text)
    _echo(f"wrote {out}")


# --- diff ----------------------------------------------------------------------------------------


@app.command("diff")
@handle_errors
def diff_cmd(
    old: Annotated[Path, typer.Argument(help="The current (old) policy file.", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The proposed (new) policy file.", show_default=False)],
    partners: PartnersOpt = None,
    fail_on_loosen: Annotated[bool, typer.Option("--fail-on-loosen", help="Exit 1 when a change loosens privacy (for CI review gates).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Explain what NEW allows or forbids compared with OLD, flagging privacy-loosening changes."""
    known = _partners(partners)
    before, after = load_policy(old, known), load_policy(new, known)
    changes = diff_policies(before, after)
    loosening = [c for c in changes if c.loosens_privacy]
    if as_json:
        emit_json({"old": content_hash(before), "new": content_hash(after), "changes": [c.model_dump() for c in changes], "loosens_privacy": bool(loosening)})
    else:
        _echo(f"{after.collaboration}: {len(changes)} change{'s' * (len(changes) != 1)}, {len(loosening)} loosen privacy  ({content_hash(before)[:12]} -> {content_hash(after)[:12]})", bold=True)
        for change in changes:
            _echo(change.render(), "red" if change.loosens_privacy else None)
        if not changes:
            _echo("no change: both files have the same canonical content (signatures stay valid)", "green")
    raise typer.Exit(1 if (fail_on_loosen and loosening) else 0)


# --- sign / verify -------------------------------------------------------------------------------


@app.command("sign")
@handle_errors
def sign_cmd(
    file: FileArg,
    key: Annotated[Path, typer.Option("--key", help="The partner's compliance private key (PEM from: cleanroom keys signing --role compliance).", show_default=False)],
    partner: Annotated[str, typer.Option("--partner", help="The signing partner's id.", show_default=False)],
    partners: PartnersOpt = None,
    store: Annotated[Path | None, typer.Option("--store", help="Also append policy.sign to this store's audit log.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign the policy's canonical bytes for one partner; writes <collaboration>.sig/<partner>.sig."""
    sig, out = sign_policy(file, read_signing_key(key), partner, _partners(partners), store_dir=store)
    if as_json:
        emit_json({"signature_file": str(out), **sig.model_dump(mode="json")})
        return
    _echo(f"{partner} signed {sig.collaboration} version {sig.content_hash} -> {out}", "green")


@app.command("verify")
@handle_errors
def verify_cmd(file: FileArg, partners: PartnersOpt = None, as_json: JsonOpt = False) -> None:
    """List who signed, who is missing, and invalid or stale signatures; exit 1 unless all signed."""
    known = _partners(partners)
    policy = load_policy(file, known)
    report = verify_signatures(file, policy, known)
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _print_report(report: SignatureReport) -> None:
    _echo(f"{report.collaboration} version {report.content_hash}", bold=True)
    for entry in report.entries:
        when = f" at {entry.signed_at:%Y-%m-%d %H:%M} UTC" if entry.signed_at and entry.status == "valid" else ""
        detail = f": {entry.detail}" if entry.detail else ""
        _echo(f"  {entry.status:<10} {entry.partner}{when}{detail}", STATUS_STYLE[entry.status])
    verdict = "fully signed: every participating partner signed these exact bytes" if report.ok else f"NOT fully signed ({len(report.signed)} of {len(report.required)})"
    _echo(verdict, "green" if report.ok else "red", bold=True)


# --- activate / status ---------------------------------------------------------------------------


@app.command("activate")
@handle_errors
def activate_cmd(
    file: FileArg,
    store: StoreOpt = None,
    partners: PartnersOpt = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who activates (recorded in the audit log); default: cli:<user>.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a valid, fully signed policy the active version (recorded and audited)."""
    record = activate(file, paths(store=store).store, _partners(partners), actor or f"cli:{getpass.getuser()}")
    if as_json:
        emit_json(record.model_dump(mode="json"))
        return
    _echo(f"activated {record.collaboration} version {record.content_hash}", "green", bold=True)
    _echo(f"  signed by {', '.join(record.signers)}; valid {record.valid_from} to {record.valid_until}")


@app.command("status")
@handle_errors
def status_cmd(
    collaboration: Annotated[str, typer.Argument(help="Collaboration id, e.g. aurora-2026.", show_default=False)],
    policies: PoliciesOpt = None,
    store: StoreOpt = None,
    partners: PartnersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the active version and check that the policy file is still exactly what was activated."""
    where = paths(store=store, partners=partners, policies=policies)
    record = active_record(where.store, collaboration)
    policy = active_policy(collaboration, where.policies, where.store, load_partners(where.partners))
    if as_json:
        emit_json({"active": True, "content_hash": content_hash(policy), "record": record.model_dump(mode="json") if record else None})
        return
    _echo(f"{collaboration}: active version {content_hash(policy)} is in force", "green", bold=True)
    if record is not None:
        _echo(f"  activated {record.activated_at:%Y-%m-%d %H:%M} UTC by {record.actor}; signed by {', '.join(record.signers)}")


def register(root: typer.Typer) -> None:
    """Add ``cleanroom policy ...`` to the main app."""
    root.add_typer(app, name="policy")
