"""Every example script starts and documents itself (integration/test_migration_drain.py runs the migration and
drain examples on the lab; `make demo` runs the CLI on examples/specs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_help(script: Path) -> None:
    cmd = [sys.executable, str(script), "--help"]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


PLAYBOOKS = sorted((Path(__file__).parent.parent / "examples" / "ansible").glob("*.yml"))


@pytest.mark.parametrize("book", [p for p in PLAYBOOKS if not p.name.endswith(".virtkit.yml")], ids=lambda p: p.name)
def test_example_playbook_parses(book: Path, tmp_path: Path) -> None:
    """Every example playbook is valid for ansible-playbook, its modules found (integration/test_ansible.py runs
    the same steps on the lab)."""
    env = {**os.environ, "ANSIBLE_CONFIG": "/nonexistent/ansible.cfg", "ANSIBLE_HOME": str(tmp_path)}
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "--syntax-check", str(book)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
