"""Are the words step's needs sound? Every rule of a semgrep rules folder against its own
positive test file.

semgrep-rules keeps, beside each rule file, a test file whose ``ruleid: <id>`` comments
mark code the rule must match. The words Treelens says a rule needs
(model/querysets/needs.py) must all be in that file, or the policy could drop a rule that
fires. Annotation comments are removed first (they name the rule id, whose words would
hide a wrong need); ``.fixed.`` files (autofix output) are not positive examples.

    python bench/rule_needs_check.py --catalog ~/semgrep-rules

Exits 1 when a rule's needs are not met by its own test file, naming each.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from treelens.model.querysets.catalog import Query
from treelens.model.querysets.needs import file_words, met
from treelens.model.querysets.semgrep import RULE_SUFFIXES, read_rules_dir

ANNOTATION = re.compile(r"(?:todo|deep)?(?:ruleid|ok)\s*:\s*[\w.\-]+(?:\s*,\s*[\w.\-]+)*")


def test_files(rule_file: Path) -> list[Path]:
    """The files beside a rule file that test it: same stem, another suffix, not autofix output."""
    stem = rule_file.name.rsplit(".", 1)[0]
    found = [p for p in rule_file.parent.glob(f"{stem}.*") if p.is_file() and p != rule_file]
    found += [p for p in rule_file.parent.glob(f"{stem}/*") if p.is_file()]
    return [p for p in found if ".fixed." not in p.name and not p.name.endswith(RULE_SUFFIXES)]


def positive(text: str, rule_id: str) -> bool:
    return re.search(rf"ruleid:[^\n]*(?<![\w.-]){re.escape(rule_id)}(?![\w.-])", text) is not None


def check(catalog: Path) -> tuple[int, int, int, list[str]]:
    """(rules, rules with needs, rules checked on a positive test file, unsound rules)."""
    rules = read_rules_dir(catalog).queries
    queries: list[Query] = [q for q in rules if q.needs is not None]
    checked, unsound = 0, []
    for query in queries:
        for test in test_files(catalog / query.source):
            text = test.read_text(encoding="utf-8", errors="replace")
            if not positive(text, query.name):
                continue
            checked += 1
            if not met(query.needs, file_words(ANNOTATION.sub(" ", text))):  # type: ignore[arg-type]
                unsound.append(f"{query.id}: needs not met by {test.relative_to(catalog)}")
    return len(rules), len(queries), checked, unsound


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True, help="a semgrep rules folder with test files")
    args = parser.parse_args()
    total, with_needs, checked, unsound = check(args.catalog)
    print(f"{total} rules, {with_needs} with needs, {checked} (rule, positive test file) pairs checked")
    for line in unsound:
        print(f"UNSOUND {line}")
    print(f"{len(unsound)} unsound")
    return 1 if unsound else 0


if __name__ == "__main__":
    sys.exit(main())
