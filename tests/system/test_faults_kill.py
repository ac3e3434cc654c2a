"""kill -9 in the middle of operator commands: the audit log and the store still tell one story.

``cleanroom policy activate`` is run as a child process and SIGKILLed after a random delay, over
and over, alternating two signed versions of the policy. After each kill a gateway is started
over the store (what an operator does next): the start check writes the activation entry a
crash cut off, so the last ``policy.activate`` entry always names the version that is active,
and the log never records an activation that did not take effect. (kill -9 during query bursts
is in ``test_release_budget.py``; during uploads in ``test_storage_faults.py``.)
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from collab import COLLABORATION, Collab, build_collab

from cleanroom.audit import AuditLog
from cleanroom.gateway.services import Services
from cleanroom.policy import sign_policy
from cleanroom.policy.activation import active_record
from cleanroom.policy.canonical import content_hash
from cleanroom.policy.load import load_policy

FAST_ROUNDS = 4
SLOW_ROUNDS = 20


@pytest.fixture(scope="module")
def collab(tmp_path_factory: pytest.TempPathFactory, repo: Path, synth_4k: Path) -> Collab:
    return build_collab(tmp_path_factory.mktemp("kill") / "collab", repo, raw_source=synth_4k)


@pytest.fixture(scope="module")
def versions(collab: Collab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two fully signed versions of the policy (they differ in one threshold), each in its own folder."""
    out: dict[str, Path] = {}
    for name, threshold in (("a", None), ("b", 1)):
        folder = tmp_path_factory.mktemp(f"policy-{name}")
        path = folder / collab.policy_path.name
        shutil.copy(collab.policy_path, path)
        if threshold is not None:
            data = yaml.safe_load(path.read_text())
            data["privacy"]["min_threshold"] = int(data["privacy"]["min_threshold"]) + threshold
            path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        partners = collab.partners()
        for pid in sorted(partners):
            sign_policy(path, collab.signing_key(pid, "compliance"), pid, partners, store_dir=collab.store, actor=pid)
        out[content_hash(load_policy(path, partners))] = path
    assert len(out) == 2
    return out


def _activate_cmd(collab: Collab, path: Path) -> list[str]:
    return [sys.executable, "-m", "cleanroom.cli.main", "policy", "activate", str(path), "--store", str(collab.store),
            "--partners", str(collab.partners_dir), "--actor", "kill-test"]


def _start_gateway(collab: Collab) -> None:
    """What the operator does after the crash: start the gateway (its start check runs, then it stops)."""
    Services(collab.config()).close()


def _last_activation(audit: AuditLog) -> str | None:
    last = None
    for entry in audit.entries():
        if entry.event == "policy.activate" and entry.details.get("collaboration") == COLLABORATION:
            last = str(entry.details["content_hash"])
    return last


@pytest.mark.parametrize("rounds", [FAST_ROUNDS, pytest.param(SLOW_ROUNDS, marks=pytest.mark.slow, id="20-rounds")])
def test_a_killed_activation_leaves_audit_and_active_policy_in_agreement(collab: Collab, versions: dict[str, Path],
                                                                          rounds: int) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    hashes = sorted(versions)
    started = time.monotonic()
    subprocess.run(_activate_cmd(collab, versions[hashes[0]]), check=True, capture_output=True, timeout=120)
    full = time.monotonic() - started  # how long one activation takes here (mostly imports)
    _start_gateway(collab)
    outcomes = {"finished": 0, "killed": 0}
    for r in range(rounds):
        wanted = hashes[(r + 1) % 2]
        proc = subprocess.Popen(_activate_cmd(collab, versions[wanted]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.6, 1.05) * full)  # late: the kill lands in or around the writes
        proc.kill()
        outcomes["finished" if proc.wait(timeout=30) == 0 else "killed"] += 1
        _start_gateway(collab)
        audit = AuditLog(collab.store / "audit.jsonl")
        record = active_record(collab.store, COLLABORATION)
        assert record is not None and record.content_hash in versions, f"seed {seed}, round {r}"
        assert _last_activation(audit) == record.content_hash, f"seed {seed}, round {r}: the log and the active policy disagree"
        assert audit.verify().ok, f"seed {seed}, round {r}"
    print(f"activation kill -9 x{rounds} (seed {seed}): {outcomes}")
    # every activation entry names a version that was activated (nothing audited that never took effect is possible
    # only if it is also the last one, checked above after each round)
    logged = [e.details["content_hash"] for e in AuditLog(collab.store / "audit.jsonl").entries() if e.event == "policy.activate"]
    assert set(logged) <= set(versions)
