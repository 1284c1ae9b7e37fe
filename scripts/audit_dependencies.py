"""The dependency audit of `make audit` (and so of `make test` and CI): the locked requirements against the public
advisory database, with pip-audit.

    python scripts/audit_dependencies.py requirements.txt requirements-dev.txt

pip-audit reads the lock files as they are (``--disable-pip``: every pin is exact and hashed, so nothing is resolved,
downloaded or installed) and asks its vulnerability service about each pinned release: by default PyPI's JSON API
(``/pypi/<name>/<version>/json``, whose ``vulnerabilities`` come from the PyPA advisory database and OSV), or OSV's
API with ``--service osv``. This script then decides:

- a known vulnerability with a fixed release fails the run (exit 1), printing the package, its pinned version, the
  advisory id with its aliases and the fixed versions: `make lock` can move to the fix;
- one without a fixed release is reported and does not fail: there is no version to move to, so failing would block
  every change without giving anybody an action; it is printed on every run, and the day a fix is published the
  same advisory fails the run;
- an advisory listed in the ignore file (``audit-ignore.toml``: id, package, reason, review date) is reported as
  ignored until its review date; after that date it counts again;
- a package the service did not answer for (unreachable, or PyPI's "not found") is NOT AUDITED: the run fails
  (exit 2) naming the packages, unless ``--on-unreachable warn`` (or AUDIT_UNREACHABLE=warn) is given, which prints
  the same list as a warning and exits 0. Silence is never reported as "no known vulnerabilities".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IGNORE_FILE = ROOT / "audit-ignore.toml"
EXIT_VULNERABLE = 1
EXIT_NOT_AUDITED = 2


@dataclasses.dataclass(frozen=True)
class Ignore:
    """One entry of the ignore file: an advisory (id or alias) of one package, accepted until ``review_by``."""

    id: str
    package: str
    reason: str
    review_by: dt.date


@dataclasses.dataclass(frozen=True)
class Finding:
    """A vulnerability pip-audit found in a pinned release; ``ids`` is the advisory id then its aliases."""

    package: str
    version: str
    ids: tuple[str, ...]
    fix_versions: tuple[str, ...]
    ignored_by: Ignore | None = None

    def line(self) -> str:
        ids = f"{self.ids[0]} ({', '.join(self.ids[1:])})" if len(self.ids) > 1 else self.ids[0]
        return f"{self.package} {self.version}: {ids}"


@dataclasses.dataclass
class Verdict:
    """What the audit decided: ``fixable`` fail the run, ``unfixable`` and ``ignored`` are reported, ``not_audited``
    ({package: why}) fail it unless unreachable services are only warned about."""

    fixable: list[Finding] = dataclasses.field(default_factory=list)
    unfixable: list[Finding] = dataclasses.field(default_factory=list)
    ignored: list[Finding] = dataclasses.field(default_factory=list)
    expired_ignores: list[Ignore] = dataclasses.field(default_factory=list)
    not_audited: dict[str, str] = dataclasses.field(default_factory=dict)
    audited: int = 0

    def exit_code(self, on_unreachable: str) -> int:
        if self.fixable:
            return EXIT_VULNERABLE
        if self.not_audited and on_unreachable == "fail":
            return EXIT_NOT_AUDITED
        return 0


def load_ignores(path: Path) -> list[Ignore]:
    """The ``[[ignore]]`` tables of the ignore file (missing file: none). Raises ValueError naming the entry when a
    field is missing or the review date is not a TOML date: an ignore without a reason or a date is not accepted."""
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("ignore", [])
    ignores = []
    for n, entry in enumerate(entries, 1):
        missing = [k for k in ("id", "package", "reason", "review_by") if not entry.get(k)]
        if missing or not isinstance(entry["review_by"], dt.date):
            raise ValueError(f"{path.name}: ignore entry {n} needs id, package, reason and review_by = YYYY-MM-DD")
        ignores.append(Ignore(entry["id"], canonicalize_name(entry["package"]), entry["reason"], entry["review_by"]))
    return ignores


def decide(report: dict, ignores: list[Ignore], today: dt.date) -> Verdict:
    """The verdict on pip-audit's JSON report (``{"dependencies": [{"name", "version", "vulns": [{"id", "aliases",
    "fix_versions"}]} | {"name", "skip_reason"}]}``), with the ignore entries whose review date is not past."""
    verdict = Verdict()
    active = [i for i in ignores if i.review_by >= today]
    verdict.expired_ignores = [i for i in ignores if i.review_by < today]
    for dependency in report.get("dependencies", []):
        name = canonicalize_name(dependency["name"])
        if "skip_reason" in dependency:
            verdict.not_audited[name] = dependency["skip_reason"]
            continue
        verdict.audited += 1
        for vuln in dependency.get("vulns", []):
            ids = (vuln["id"], *[a for a in vuln.get("aliases", []) if a != vuln["id"]])
            finding = Finding(name, dependency["version"], ids, tuple(vuln.get("fix_versions", [])))
            ignore = next((i for i in active if i.package == name and i.id in ids), None)
            if ignore:
                verdict.ignored.append(dataclasses.replace(finding, ignored_by=ignore))
            elif finding.fix_versions:
                verdict.fixable.append(finding)
            else:
                verdict.unfixable.append(finding)
    return verdict


def render(verdict: Verdict, on_unreachable: str) -> list[str]:
    """The report's lines, most urgent first."""
    lines = []
    for f in verdict.fixable:
        lines.append(f"VULNERABLE  {f.line()}; fixed in {', '.join(f.fix_versions)}")
    for f in verdict.unfixable:
        lines.append(f"NO FIX YET  {f.line()}; reported, not failing: no fixed release exists")
    for f in verdict.ignored:
        i = f.ignored_by
        lines.append(f"IGNORED     {f.line()}; until {i.review_by}: {i.reason}")
    for i in verdict.expired_ignores:
        lines.append(f"REVIEW      audit-ignore.toml: {i.id} ({i.package}) was to be reviewed by {i.review_by}")
    total = verdict.audited + len(verdict.not_audited)
    if verdict.not_audited:
        names = sorted(verdict.not_audited)
        listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        why = verdict.not_audited[names[0]]
        lines.append(
            f"NOT AUDITED {len(names)} of {total} pinned package(s): the advisory service gave no answer for them "
            f"(e.g. {why!r}): {listed}"
        )
    if verdict.fixable:
        lines.append(
            f"FAILED: {len(verdict.fixable)} known vulnerabilit{'y' if len(verdict.fixable) == 1 else 'ies'} with a "
            "fix. Raise the pin (README: Dependency audit), or list the advisory in audit-ignore.toml with a reason."
        )
    elif verdict.not_audited and on_unreachable == "fail":
        lines.append(
            "FAILED: the dependencies could not be audited (see NOT AUDITED above). Where the advisory service cannot "
            "be reached, AUDIT_UNREACHABLE=warn reports this and goes on."
        )
    elif verdict.not_audited:
        lines.append(
            f"WARNING: only {verdict.audited} of {total} pinned releases audited (AUDIT_UNREACHABLE=warn); "
            "no known vulnerability with a fix among them."
        )
    else:
        lines.append(f"OK: {verdict.audited} pinned release(s) audited, no known vulnerability with a fix.")
    return lines


def run_pip_audit(lock_files: list[Path], service: str, osv_url: str | None, timeout: int) -> dict:
    """pip-audit's JSON report on the lock files, nothing resolved or installed. A service that cannot be reached at
    all makes pip-audit stop without a report: then every pinned package is reported as not audited."""
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "--disable-pip", "--progress-spinner", "off"]
        command += ["--format", "json", "--output", str(out), "--vulnerability-service", service]
        command += ["--timeout", str(timeout), "--cache-dir", str(Path(tmp) / "cache")]
        if osv_url:
            command += ["--osv-url", osv_url]
        for path in lock_files:
            command += ["--requirement", str(path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.exists() and out.stat().st_size:
            return json.loads(out.read_text(encoding="utf-8"))
    last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
    why = f"pip-audit exited {result.returncode} without a report: {last}"
    return {"dependencies": [{"name": name, "skip_reason": why} for name in pinned_names(lock_files)]}


def pinned_names(lock_files: list[Path]) -> list[str]:
    """The names pinned (``name==version``) in pip-tools lock files."""
    names = []
    for path in lock_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "==" in line and not line.lstrip().startswith(("#", "-")):
                names.append(line.split("==", 1)[0].strip())
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock_files", nargs="+", type=Path)
    parser.add_argument("--ignore-file", type=Path, default=DEFAULT_IGNORE_FILE)
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi")
    parser.add_argument("--osv-url", help="an OSV-compatible /v1/query URL (with --service osv)")
    parser.add_argument(
        "--on-unreachable",
        choices=("fail", "warn"),
        default=os.environ.get("AUDIT_UNREACHABLE") or "fail",
        help="what a package the service gave no answer for does to the run (default: fail; AUDIT_UNREACHABLE)",
    )
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request to the service")
    args = parser.parse_args(argv)
    ignores = load_ignores(args.ignore_file)
    report = run_pip_audit(args.lock_files, args.service, args.osv_url, args.timeout)
    verdict = decide(report, ignores, dt.datetime.now(dt.UTC).date())
    print(f"Dependency audit of {', '.join(p.name for p in args.lock_files)} ({args.service} advisories):")
    for line in render(verdict, args.on_unreachable):
        print(f"  {line}")
    return verdict.exit_code(args.on_unreachable)


if __name__ == "__main__":
    sys.exit(main())
