"""Fixture projects and rule sets for the query-set tests (tests/fixtures/querysets/).

Projects are copied out of the repository before use: semgrep's default ignores skip
paths under tests/, and a copy is scanned by the plain folder walk, as a user's is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from treelens.daemon.scan import scan
from treelens.model.input import Analysis, analyze

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "querysets"
RULES = FIXTURES / "rules"
PROJECTS = ("flask_app", "django_site", "react_app", "terraform_infra")


def copy_project(name: str, into: Path) -> Path:
    """A copy of one fixture project under ``into``."""
    target = into / name
    shutil.copytree(FIXTURES / name, target)
    return target


def analysis_of(folder: Path) -> Analysis:
    """The deterministic facts of a folder, as `treelens suggest` computes them."""
    return analyze(scan(folder, use_git=False).tree)
