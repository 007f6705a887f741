"""Test, lint, type-check, benchmark and build every distribution of the repository.

The package list is derived from ``*/pyproject.toml`` (every top-level folder holding a
distribution), never hand-written. Each distribution's tests run in their own virtualenv with
``otus-core`` installed from this checkout, which catches undeclared dependencies.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parent
CORE = "otus-core"
CORE_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"
EXAMPLE_PLUGIN = "docs/examples/otus-parser-example"

# Interpreters installed by pyenv are found without activating pyenv.
_PYENV = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin")))
os.environ["PATH"] = os.pathsep.join([*_PYENV, os.environ.get("PATH", "")])

nox.options.sessions = ["lint", "typecheck", "tests", "integration", "example_plugin"]
nox.options.error_on_missing_interpreters = True


def _project(folder: str | Path) -> dict[str, object]:
    with open(Path(folder) / "pyproject.toml", "rb") as f:
        project = tomllib.load(f).get("project", {})
    return project if isinstance(project, dict) else {}


def _packages() -> list[str]:
    """Top-level folders whose pyproject.toml declares a distribution; otus-core first."""
    found = [p.parent.name for p in sorted(ROOT.glob("*/pyproject.toml")) if _project(p.parent)]
    return sorted(found, key=lambda name: (name != CORE, name))


PACKAGES = _packages()


def _has_test_extra(folder: str) -> bool:
    extras = _project(folder).get("optional-dependencies", {})
    return isinstance(extras, dict) and "test" in extras


def _first_party_test_deps(folder: str) -> list[str]:
    """Distributions of this repository that ``folder``'s test extra asks for."""
    extras = _project(folder).get("optional-dependencies", {})
    wanted = extras.get("test", []) if isinstance(extras, dict) else []
    names = {re.split(r"[\s\[<>=!~;]", str(req), maxsplit=1)[0].lower() for req in wanted}
    return [p for p in PACKAGES if p in names and p not in (CORE, folder)]


def _install(session: nox.Session, *folders: str) -> None:
    """otus-core from the checkout first (never PyPI), then first-party test dependencies from
    the checkout too, then each folder with its test extra."""
    session.install(f"./{CORE}[test]" if _has_test_extra(CORE) else f"./{CORE}")
    for folder in folders:
        if folder != CORE:
            for dep in _first_party_test_deps(folder):
                session.install(f"./{dep}")
            session.install(f"./{folder}[test]" if _has_test_extra(folder) else f"./{folder}")


@nox.session
@nox.parametrize(
    "python,package",
    [(py, CORE) for py in CORE_PYTHONS] + [(DEFAULT_PYTHON, p) for p in PACKAGES if p != CORE],
)
def tests(session: nox.Session, package: str) -> None:
    """Unit tests of one distribution in its own virtualenv."""
    _install(session, package)
    session.install("pytest", "pytest-timeout")
    session.run("pytest", f"{package}/tests", "--timeout=300", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
@nox.parametrize("package", PACKAGES)
def typecheck(session: nox.Session, package: str) -> None:
    """mypy --strict on the distribution's src/ (config in the root pyproject.toml)."""
    _install(session, package)
    session.install("mypy", "types-PyYAML")
    session.run("mypy", "--config-file", "pyproject.toml", f"{package}/src")


@nox.session(python=DEFAULT_PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package and end-to-end tests (root tests/) with every distribution installed."""
    _install(session, *PACKAGES)
    session.install("pytest", "pytest-timeout")
    if not list((ROOT / "tests").rglob("test_*.py")):
        session.log("tests/ holds no integration tests yet")
        return
    session.run("pytest", "tests", "--timeout=600", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def example_plugin(session: nox.Session) -> None:
    """Install the example third-party plugin non-editable, check it is listed, run its tests."""
    example = ROOT / EXAMPLE_PLUGIN
    if not (example / "pyproject.toml").exists():
        session.error(f"{EXAMPLE_PLUGIN} is missing")
    _install(session, *PACKAGES)
    session.install(
        f"./{EXAMPLE_PLUGIN}[test]" if _has_test_extra(EXAMPLE_PLUGIN) else f"./{EXAMPLE_PLUGIN}"
    )
    session.install("pytest", "pytest-timeout")
    dist = str(_project(example)["name"])
    listing = session.run("otus", "plugins", "list", "--json", silent=True)
    entries = json.loads(str(listing))
    mine = [e for e in entries if e["distribution"] == dist]
    if not mine or any(e["status"] != "loaded" for e in mine):
        session.error(f"otus plugins list does not show {dist} loaded: {mine}")
    session.log(f"listed: {', '.join(e['kind'] + ' ' + e['name'] for e in mine)}")
    # Run from outside the checkout so the tests import the installed copy.
    session.chdir(session.create_tmp())
    session.run("pytest", str(example / "tests"), "--timeout=300", *session.posargs)


BENCH_RUNNER = """
import importlib.util, statistics, sys
quick = sys.argv[1] == "quick"
rows = []
for path in sys.argv[2:]:
    spec = importlib.util.spec_from_file_location(path.rsplit("/", 1)[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows += module.run(quick)
head = ("stage", "otus", "unit", "peer", "peer rate", "ratio", "note")
def fmt(r):
    ratio = r["otus_rate"] / r["peer_rate"] if r.get("peer_rate") else None
    return (r["stage"], f"{r['otus_rate']:,.0f}", r["unit"], r.get("peer") or "-",
            f"{r['peer_rate']:,.0f}" if r.get("peer_rate") else "-",
            f"{ratio:.2f}x" if ratio else "-", r.get("note", ""))
table = [head] + [fmt(r) for r in rows]
widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
for row in table:
    print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
if not rows:
    print("(no benchmarks under bench/)")
"""


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Run every bench/bench_*.py ``run(quick)``; print one table (``-- --full``: long runs)."""
    _install(session, *PACKAGES)
    files = sorted(str(p) for p in (ROOT / "bench").glob("bench_*.py"))
    quick = "quick" if "--full" not in session.posargs else "full"
    session.run("python", "-c", BENCH_RUNNER, quick, *files)


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """sdist and wheel of every distribution into dist/<package>/, then twine check."""
    session.install("build", "twine")
    for package in PACKAGES:
        session.run("python", "-m", "build", "--outdir", f"dist/{package}", package)
    session.run("twine", "check", *sorted(str(p) for p in (ROOT / "dist").glob("*/*")))
