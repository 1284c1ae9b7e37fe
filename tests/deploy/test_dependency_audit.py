"""The dependency audit (scripts/audit_dependencies.py, `make audit`): a known vulnerability with a fix fails the run
with the package, the advisory and the fixed version; one without a fix is reported; an ignore entry holds until its
review date; a service that gives no answer fails loudly (or warns, when told to).

The end-to-end tests run the real pip-audit on a real hashed lock file against an OSV-compatible advisory service
on loopback (pip-audit's ``--osv-url``), so they need no network; the advisories it serves are made up for the test.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandboxes.server import free_port, serve_in_thread
from scripts.audit_dependencies import Ignore, decide, load_ignores

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "audit_dependencies.py"
TODAY = dt.date(2026, 11, 30)

# pip-audit's JSON report (`--format json`, aliases on), as it prints one: a fixable and an unfixable finding, a clean
# package and one the service did not answer for.
REPORT = {
    "dependencies": [
        {
            "name": "Jinja2",
            "version": "3.1.2",
            "vulns": [
                {
                    "id": "GHSA-h5c8-rqwp-cp95",
                    "fix_versions": ["3.1.3"],
                    "aliases": ["CVE-2024-22195"],
                    "description": "xmlattr filter accepts keys with spaces",
                }
            ],
        },
        {
            "name": "some-lib",
            "version": "1.0",
            "vulns": [{"id": "PYSEC-2099-1", "fix_versions": [], "aliases": [], "description": "no fix yet"}],
        },
        {"name": "ruff", "version": "0.17.6", "vulns": []},
        {"name": "a2wsgi", "skip_reason": "Dependency not found on PyPI and could not be audited: a2wsgi (1.10.10)"},
    ],
    "fixes": [],
}


def test_a_fixable_vulnerability_fails_and_an_unfixable_one_is_only_reported():
    verdict = decide(REPORT, [], TODAY)

    (fixable,) = verdict.fixable
    assert (fixable.package, fixable.version, fixable.fix_versions) == ("jinja2", "3.1.2", ("3.1.3",))
    assert fixable.ids == ("GHSA-h5c8-rqwp-cp95", "CVE-2024-22195")
    assert [f.ids for f in verdict.unfixable] == [("PYSEC-2099-1",)]
    assert verdict.not_audited == {"a2wsgi": REPORT["dependencies"][3]["skip_reason"]}
    assert verdict.audited == 3
    assert verdict.exit_code("fail") == verdict.exit_code("warn") == 1


def test_an_ignore_entry_holds_until_its_review_date_and_matches_an_alias():
    ignore = Ignore("CVE-2024-22195", "jinja2", "the sandboxed environment is not used", dt.date(2026, 12, 31))
    no_skip = {"dependencies": REPORT["dependencies"][:3]}

    verdict = decide(no_skip, [ignore], TODAY)
    assert not verdict.fixable and [f.ignored_by for f in verdict.ignored] == [ignore]
    assert verdict.exit_code("fail") == 0  # the unfixable finding is reported, it does not fail

    later = decide(no_skip, [ignore], dt.date(2027, 1, 1))
    assert [f.package for f in later.fixable] == ["jinja2"] and later.expired_ignores == [ignore]
    assert later.exit_code("fail") == 1


def test_packages_the_service_did_not_answer_for_fail_unless_warned_about():
    verdict = decide({"dependencies": REPORT["dependencies"][2:]}, [], TODAY)
    assert not verdict.fixable and list(verdict.not_audited) == ["a2wsgi"]
    assert verdict.exit_code("fail") == 2
    assert verdict.exit_code("warn") == 0


def test_the_ignore_file_needs_a_reason_and_a_review_date(tmp_path):
    path = tmp_path / "audit-ignore.toml"
    path.write_text('[[ignore]]\nid = "GHSA-1"\npackage = "Jinja2"\nreason = "r"\nreview_by = 2027-01-31\n')
    assert load_ignores(path) == [Ignore("GHSA-1", "jinja2", "r", dt.date(2027, 1, 31))]
    path.write_text('[[ignore]]\nid = "GHSA-1"\npackage = "jinja2"\nreview_by = 2027-01-31\n')
    with pytest.raises(ValueError, match="entry 1 needs id, package, reason and review_by"):
        load_ignores(path)
    assert load_ignores(ROOT / "audit-ignore.toml") == []  # the repository's list: valid, and empty today


# -- the real pip-audit against an advisory service on loopback ----------------------------------------------------
def osv_service() -> FastAPI:
    """OSV's POST /v1/query (schema 1.x): a fixed advisory for pytest, an unfixed one for ruff, nothing else."""
    app = FastAPI()
    advisories = {
        "pytest": {
            "id": "GHSA-test-fixd-0001",
            "aliases": ["CVE-2099-0001"],
            "summary": "made up for the test",
            "affected": [
                {
                    "package": {"name": "pytest", "ecosystem": "PyPI"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0.1"}]}],
                }
            ],
        },
        "ruff": {
            "id": "GHSA-test-nofx-0002",
            "summary": "made up for the test, no fix",
            "affected": [
                {
                    "package": {"name": "ruff", "ecosystem": "PyPI"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ],
        },
    }

    @app.post("/v1/query")
    async def query(request: Request) -> JSONResponse:
        name = (await request.json())["package"]["name"]
        return JSONResponse({"vulns": [advisories[name]]} if name in advisories else {})

    return app


@pytest.fixture
def lock(tmp_path) -> Path:
    """pytest's and ruff's pins with their hashes, cut from requirements-dev.txt (a lock file as `make lock` writes
    it)."""
    text = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    blocks = re.findall(r"^(?:pytest|ruff)==.*?(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2, "requirements-dev.txt pins pytest and ruff"
    path = tmp_path / "requirements.txt"
    path.write_text("".join(blocks), encoding="utf-8")
    return path


def audit(*args: str | Path) -> subprocess.CompletedProcess:
    """The audit script as CI runs it, but deciding by its arguments only (CI exports AUDIT_UNREACHABLE=warn)."""
    env = {k: v for k, v in os.environ.items() if k != "AUDIT_UNREACHABLE"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_pip_audit_on_a_lock_file_fails_on_the_fixable_advisory_and_reports_the_unfixable(lock, tmp_path):
    with serve_in_thread(osv_service()) as base_url:
        osv = ["--service", "osv", "--osv-url", f"{base_url}/v1/query", "--ignore-file", tmp_path / "none.toml"]
        failed = audit(lock, *osv)
        ignore = tmp_path / "audit-ignore.toml"
        ignore.write_text(
            '[[ignore]]\nid = "CVE-2099-0001"\npackage = "pytest"\nreason = "test only"\nreview_by = 2999-01-01\n'
        )
        accepted = audit(lock, *osv[:-1], ignore)

    assert failed.returncode == 1, failed.stdout + failed.stderr
    pytest_pin = re.search(r"^pytest==(\S+)", lock.read_text(), re.MULTILINE)[1]
    assert f"VULNERABLE  pytest {pytest_pin}: CVE-2099-0001 (GHSA-test-fixd-0001); fixed in 99.0.1" in failed.stdout
    assert "NO FIX YET  ruff " in failed.stdout and "GHSA-test-nofx-0002" in failed.stdout
    assert "FAILED: 1 known vulnerability with a fix" in failed.stdout

    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "IGNORED     pytest" in accepted.stdout and "until 2999-01-01: test only" in accepted.stdout
    assert "NO FIX YET  ruff " in accepted.stdout and "OK: 2 pinned release(s) audited" in accepted.stdout


def test_an_unreachable_advisory_service_fails_loudly_or_warns_when_told(lock, tmp_path):
    closed = ["--service", "osv", "--osv-url", f"http://127.0.0.1:{free_port()}/v1/query", "--timeout", "5"]
    closed += ["--ignore-file", tmp_path / "none.toml"]

    failed = audit(lock, *closed)
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "NOT AUDITED 2 of 2 pinned package(s)" in failed.stdout and "pytest, ruff" in failed.stdout
    assert "FAILED: the dependencies could not be audited" in failed.stdout
    assert "OK:" not in failed.stdout and "WARNING" not in failed.stdout

    warned = audit(lock, *closed, "--on-unreachable", "warn")
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "WARNING: only 0 of 2 pinned releases audited" in warned.stdout


def test_make_test_runs_the_audit_on_both_locks():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^test:.*\baudit\b", makefile, re.MULTILINE)
    recipe = re.search(r"^audit:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)[1]
    assert "scripts/audit_dependencies.py" in recipe and "$(LOCKS)" in recipe
    assert re.search(r"^pip-audit==", (ROOT / "requirements-dev.in").read_text(), re.MULTILINE)
