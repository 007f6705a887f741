"""docs/cli.md documents every command, action and option that ``otus ... --help`` prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from otus.cli import docs
from otus.cli.main import main

REPO = Path(__file__).resolve().parents[3]
CLI_MD = REPO / docs.MARKDOWN_PATH
COMMANDS = [path for path, _ in docs.commands()]
#: Commands of a daemon operator: each needs a hand-written section with its exit codes.
OPERATOR_COMMANDS = ("daemon", "task", "status", "stats", "reload", "stop")


def read_doc() -> str:
    return CLI_MD.read_text(encoding="utf-8")


def help_text(*path: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    return out.getvalue()


def section(doc: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = doc.index(heading + "\n")
    nxt = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(doc, start + len(heading))
    return doc[start : nxt.start() if nxt else len(doc)]


def test_generated_reference_is_current() -> None:
    assert docs.splice(read_doc(), docs.render_reference()) == read_doc(), (
        f"{docs.MARKDOWN_PATH} is stale: run python -m otus.cli.docs --root ."
    )


def test_check_mode_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / docs.MARKDOWN_PATH).write_text("# The `otus` command line\n\nHand-written.\n")
    assert docs.main(["--root", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docs.main(["--root", str(tmp_path)]) == 0
    text = (tmp_path / docs.MARKDOWN_PATH).read_text()
    assert text.startswith("# The `otus` command line\n\nHand-written.\n")
    assert docs.main(["--root", str(tmp_path), "--check"]) == 0


def test_every_command_of_the_parser_is_covered() -> None:
    names = {path[0] for path in COMMANDS}
    assert set(OPERATOR_COMMANDS) | {"plugins", "validate", "run"} <= names
    assert ("task", "create") in COMMANDS
    assert ("plugins", "list") in COMMANDS


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "otus")
def test_options_printed_by_help_are_documented(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each option and positional that ``--help`` lists appears in the command's section."""
    monkeypatch.setenv("COLUMNS", "100")
    text = help_text(*path)
    heading = "### `" + " ".join(("otus", *path)) + "`"
    body = section(read_doc(), heading)
    options = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text)) - {"-h", "--help"}
    for option in sorted(options):
        assert f"`{option}" in body or f" {option}" in body or f", {option}" in body, (
            f"{option} of `otus {' '.join(path)}` (from --help) is missing under {heading}"
        )
    positionals = re.search(r"^positional arguments:\n((?:  .*\n)+)", text, re.MULTILINE)
    for line in positionals.group(1).splitlines() if positionals else []:
        indent = len(line) - len(line.lstrip())
        if indent not in (2, 4):  # a wrapped help text
            continue
        name = line.split()[0]
        if indent == 4:  # a subcommand listed under its metavar: its own section
            sub = "### `" + " ".join(("otus", *path, name)) + "`"
            assert sub + "\n" in read_doc(), f"`otus {' '.join((*path, name))}` undocumented"
        elif name not in ("COMMAND", "ACTION"):  # the metavars of the subcommand lists
            assert f"`{name}`" in body or f"`[{name}]`" in body, (name, heading)


@pytest.mark.parametrize("name", OPERATOR_COMMANDS)
def test_operator_commands_have_a_section_with_exit_codes(name: str) -> None:
    doc = read_doc()
    handwritten = doc[: doc.index(docs.BEGIN)]
    heading = next(
        (line for line in handwritten.splitlines()
         if line.startswith("## ") and re.search(rf"`otus ({name}\b|[^`]*[|,] ?{name}\b)", line)),
        None,
    )  # fmt: skip
    assert heading is not None, f"no hand-written section for `otus {name}`"
    assert "exit code" in section(handwritten, heading).lower(), heading
