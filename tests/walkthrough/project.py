"""The project side of the walkthrough: the README's section as data, a copy of the tree, manage.py in it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tests.databases import TEST_SECRET_KEY

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Adding a model"
COMMAND_TIMEOUT = 180
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<code>.*?)^(?P=indent)```", re.M | re.S)
_NAMED_FILE = re.compile(r"`(?P<path>[\w/]+\.py)`:\s*$")


@dataclass(frozen=True)
class Walkthrough:
    files: dict[str, str]  # path -> code, from the section's blocks
    commands: list[list[str]]  # the section's `python manage.py ...` lines


def readme_walkthrough() -> Walkthrough:
    """The code blocks whose preceding line names a file, and the shell commands, of the section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert SECTION + "\n" in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    files, commands = {}, []
    for block in _FENCE.finditer(section):
        code = textwrap.dedent(block["indent"] + block["code"])
        if block["lang"] == "bash":
            for line in code.splitlines():
                words = shlex.split(line, comments=True)
                if words[:2] == ["python", "manage.py"]:
                    commands.append(words[1:])
            continue
        before = section[: block.start()].rstrip("\n").rsplit("\n", 1)[-1]
        named = _NAMED_FILE.search(before)
        if block["lang"] == "python" and named:
            files[named["path"]] = code
    return Walkthrough(files=files, commands=commands)


def copy_working_tree(target: Path) -> None:
    """What `git ls-files` sees (tracked and new files, not ignored ones such as .venv and var/)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def environment(tree: Path, database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.upper() != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": database_url,
            "ENVIRONMENT": "test",
            "SECRET_KEY": TEST_SECRET_KEY,
            "PASSWORD_HASH_MEMORY_KIB": "1024",
            "PASSWORD_HASH_TIME_COST": "1",
            # The copy, never the project the virtualenv was installed from.
            "PYTHONPATH": str(tree),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def manage(tree: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"manage.py {shlex.join(args)} exited {done.returncode}:\n{output}"
    assert "Traceback" not in output, f"manage.py {shlex.join(args)} printed a traceback:\n{output}"
    return done.stdout


def lint(tree: Path, paths: list[str]) -> None:
    """Fail unless `paths` pass the project's ruff check and format check, as `./dev test` runs them."""
    for check in (["check"], ["format", "--check"]):
        linted = subprocess.run(
            [sys.executable, "-m", "ruff", *check, *paths],
            cwd=tree,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert linted.returncode == 0, f"ruff {' '.join(check)}:\n{linted.stdout}{linted.stderr}"
