"""The documents tell the truth: generated tables are current, and every command they show works.

Every line of a ```sh block in README.md and docs/*.md is a command, checked by what it is:

- ``agentry ...`` runs (through typer's runner) and must exit as its ``# exit N`` comment says
  (0 if none); ``# needs AWS`` (a deployed stack) or ``# see <test file>`` (exercised there)
  only checks that the subcommand and every flag exist;
- ``make <target>``: the Makefile has the target (``make test`` cannot run inside itself);
- ``pulumi ...`` (no CLI here): the stack file, the pack folder and its config exist.
"""

from __future__ import annotations

import io
import logging
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from config_reference import DOC as CONFIG_DOC
from config_reference import current_block as config_block
from config_reference import reference
from event_flow import DOC as FLOW_DOC
from event_flow import block as flow_block
from event_flow import current_block as flow_current
from typer.testing import CliRunner

from agentry_runtime.observability import logger as runtime_logger
from agentry_stacks.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Command:
    """One documented command: where it is, its words, and what its comment asks."""

    where: str
    words: list[str]
    comment: str

    def __str__(self) -> str:
        return f"{self.where}: {' '.join(self.words)}"


def commands() -> list[Command]:
    """Every command of every ```sh block of the documents."""
    found = []
    for document in DOCUMENTS:
        for block in _BLOCK.findall(document.read_text(encoding="utf-8")):
            for line in block.splitlines():
                code, _, comment = line.partition("  #")
                if code.strip() and not code.lstrip().startswith("#"):
                    found.append(
                        Command(
                            document.name, shlex.split(code), comment.strip().lstrip("#").strip()
                        )
                    )
    return found


def _ids(command: Command) -> str:
    return " ".join(command.words)[:80]


def test_the_documents_show_commands() -> None:
    # GIVEN the documents THEN they show commands of each kind this test checks
    programs = {c.words[0] for c in commands()}
    assert {"agentry", "make", "pulumi"} <= programs
    assert programs <= {"agentry", "make", "pulumi"}, programs


@pytest.mark.parametrize("command", [c for c in commands() if c.words[0] == "make"], ids=_ids)
def test_make_targets_exist(command: Command) -> None:
    makefile = (ROOT / "Makefile").read_text()
    (target,) = command.words[1:]
    assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), command


@pytest.mark.parametrize("command", [c for c in commands() if c.words[0] == "pulumi"], ids=_ids)
def test_pulumi_commands_name_what_exists(command: Command) -> None:
    words = command.words
    assert words[1] in {"up", "preview", "stack", "install"}, command
    options = dict(zip(words[2::2], words[3::2], strict=False))
    if "--stack" in options:
        assert (ROOT / f"Pulumi.{options['--stack']}.yaml").is_file(), command
    if "--policy-pack" in options:
        assert (ROOT / options["--policy-pack"] / "PulumiPolicy.yaml").is_file(), command
    if "--policy-pack-config" in options:
        assert (ROOT / options["--policy-pack-config"]).is_file(), command


def _help(words: list[str]) -> str:
    path = [w for w in words[1:] if not w.startswith("-")]
    for depth in range(len(path), -1, -1):
        result = CliRunner().invoke(app, [*path[:depth], "--help"])
        if result.exit_code == 0:
            return result.output
    raise AssertionError(f"no such command: {' '.join(words)}")


def _checks_flags(command: Command) -> None:
    text = _help(command.words)
    for word in command.words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in text, f"{command}: {word} is not an option"


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in commands() if c.words[0] == "agentry"], ids=_ids)
def test_agentry_commands_work_as_shown(command: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    _checks_flags(command)
    if command.comment.startswith("needs AWS"):
        return
    if command.comment.startswith("see "):
        assert (ROOT / command.comment.removeprefix("see ").strip()).exists(), command
        return
    expected = (
        int(command.comment.removeprefix("exit ")) if command.comment.startswith("exit") else 0
    )
    # WHEN the command runs from the project root THEN it exits as the document says
    monkeypatch.chdir(ROOT)
    # The runner closes the streams of each invocation; a logger created during an earlier one
    # would still hold its closed stdout.
    handler = runtime_logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        monkeypatch.setattr(handler, "stream", io.StringIO())
    result = CliRunner().invoke(app, command.words[1:])
    assert result.exit_code == expected, f"{command}\n{result.output[-2000:]}"


def test_the_configuration_reference_is_current() -> None:
    # rewrite: python tests/house/config_reference.py
    assert config_block(CONFIG_DOC.read_text(encoding="utf-8")) == reference()


@pytest.mark.slow
def test_the_event_flow_diagram_is_current() -> None:
    # rewrite: python tests/house/event_flow.py
    assert flow_current(FLOW_DOC.read_text(encoding="utf-8")) == flow_block()


def test_every_document_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, page.name
