"""bandit's catalog (the installed package's tests) and its test selection.

bandit has two kinds of tests, both selectable with ``-t``: plugins (B1xx-B7xx checks on
the AST) and blacklist entries (B3xx calls, B4xx imports, with a CWE each). bandit has no
technology metadata; the words of a test's name and the top-level modules it looks for
(``flask_debug_true``, ``django.utils.safestring.mark_safe``) stand in for tags, and the
policy treats every word it does not know as technology-neutral.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import entry_points
from typing import Any

import yaml

from treelens.model.filters import OUTPUT_PREFIX
from treelens.model.querysets.catalog import Catalog, CatalogError, Query

CONFIG_FILE_NAME = f"{OUTPUT_PREFIX}bandit.yaml"  # left out of the tree (model/filters.py)
_WORD = re.compile(r"[a-z][a-z0-9]*")


class _FormatterFailures(logging.Filter):
    """Drops stevedore's "Could not load 'sarif'" for bandit's optional report formatters
    whose packages are missing (no concern of a test list: it printed on every bandit
    request); a plugin, a test, that fails to load is still reported."""

    def __init__(self) -> None:
        super().__init__()
        self.formatters = {entry.name for entry in entry_points(group="bandit.formatters")}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        failed = isinstance(record.msg, str) and record.msg.startswith("Could not load")
        return not (failed and args and args[0] in self.formatters)


def read_installed() -> Catalog:
    """Every plugin and blacklist test of the installed bandit."""
    stevedore_log = logging.getLogger("stevedore.extension")
    quiet = _FormatterFailures()
    stevedore_log.addFilter(quiet)
    try:
        import bandit
        from bandit.core import extension_loader
    except ImportError as error:
        raise CatalogError(f"bandit is not installed ({error}); run `pip install bandit`") from error
    finally:
        stevedore_log.removeFilter(quiet)
    manager = extension_loader.MANAGER
    queries = [
        Query(
            id=plugin.plugin._test_id,
            engine="bandit",
            languages=("python",),
            technologies=_words(plugin.name),
            category="security",
            name=plugin.name,
            extra={"checks": list(getattr(plugin.plugin, "_checks", []))},
        )
        for plugin in manager.plugins
    ]
    for test_id, entry in sorted(manager.blacklist_by_id.items()):
        modules = [q.split(".", 1)[0] for q in entry.get("qualnames", [])]
        queries.append(
            Query(
                id=test_id,
                engine="bandit",
                languages=("python",),
                technologies=tuple(dict.fromkeys((*_words(entry["name"]), *(m.lower() for m in modules)))),
                category="security",
                cwe=(entry["cwe"],) if isinstance(entry.get("cwe"), int) else (),
                name=entry["name"],
                extra={"checks": ["blacklist"]},
            )
        )
    queries.sort(key=lambda q: q.id)
    return Catalog(
        engine="bandit", source=f"bandit {bandit.__version__}", kind="installed", queries=tuple(queries)
    )


def _words(name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_WORD.findall(name.lower())))


def config(selected: list[Query]) -> dict[str, Any]:
    """The bandit selection: ``-t`` ids and the same as a config file (``bandit -c FILE``)."""
    ids = [q.id for q in selected]
    if not ids:  # an empty -t or `tests: []` would make bandit run every test
        return {
            "format": "bandit-config",
            "fileName": CONFIG_FILE_NAME,
            "text": "# no bandit test applies to this project (no Python files): do not run bandit\n",
            "args": [],
            "note": "no bandit test applies: do not run bandit",
        }
    text = f"# bandit -c {CONFIG_FILE_NAME} -r PATH: the tests Treelens suggests\n" + yaml.safe_dump(
        {"tests": ids}, sort_keys=False
    )
    return {
        "format": "bandit-config",
        "fileName": CONFIG_FILE_NAME,
        "text": text,
        "args": ["-t", ",".join(ids)],
    }
