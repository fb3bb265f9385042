"""suggest(): a project's facts (+ the model's labels when there is a model) and an
engine's catalog -> the query set worth running, with a reason for every query dropped
and the engine config to run it.

This is the one function the CLI (``treelens suggest``) and the daemon
(``treelens/suggestQuerySet``) call; its ``to_json()`` is DESIGN.md's result shape
``{engine, selected, excludedCount, totalCount, reasons, config}`` plus what a person
needs to trust it: what the decision was based on, and which queries were kept only by
a conservative rule.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treelens.model.input import Analysis
from treelens.model.querysets import bandit, checkov, codeql, semgrep
from treelens.model.querysets.catalog import Catalog, CatalogError, Query
from treelens.model.querysets.policy import Labels, Policy, decide_all

BASIS_MODEL = "model, languages and technologies"
BASIS_FACTS = "languages and technologies"


@dataclass(frozen=True)
class ModelLabels:
    """What a model said about a project, for the policy; probabilities None without one."""

    probabilities: dict[str, float] | None
    thresholds: dict[str, float] | None
    note: str
    model_version: str | None = None


@dataclass(frozen=True)
class QuerySet:
    """The suggested queries of one engine for one project."""

    engine: str
    catalog: Catalog
    selected: list[Query]
    reasons: dict[str, str]
    """Drop reason of every query left out, by query id."""
    conservative: dict[str, str]
    """Queries kept only by a conservative rule (uncertain label, unknown frameworks)."""
    basis: str
    note: str
    label_states: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.catalog)

    def summary_lines(self, top: int = 12) -> list[str]:
        """A person's summary: kept / total, basis, the commonest drop reasons."""
        lines = [
            f"{self.engine}: {len(self.selected)} of {self.total} queries kept, "
            f"{len(self.reasons)} dropped (catalog {self.catalog.source})",
            f"  decided on: {self.basis}" + (f" ({self.note})" if self.note else ""),
        ]
        counts = Counter(self.reasons.values())
        for reason, n in counts.most_common(top):
            lines.append(f"  {n:6d}  dropped: {reason}")
        rest = sum(counts.values()) - sum(n for _, n in counts.most_common(top))
        if rest:
            lines.append(f"  {rest:6d}  dropped: other reasons (see --json)")
        if self.conservative:
            lines.append(
                f"  {len(self.conservative):6d}  kept by a conservative rule (see --json 'conservative')"
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's suggestQuerySet result, plus basis, note, catalog and label states."""
        return {
            "engine": self.engine,
            "selected": [q.id for q in self.selected],
            "excludedCount": len(self.reasons),
            "totalCount": self.total,
            "reasons": self.reasons,
            "config": self.config,
            "conservative": self.conservative,
            "basis": self.basis,
            "note": self.note,
            "labelStates": self.label_states,
            "catalog": {"source": self.catalog.source, "kind": self.catalog.kind},
        }


@dataclass(frozen=True)
class Engine:
    """One engine as suggest() uses it: how its catalog is read and its config written."""

    load: Callable[[Path | None], Catalog]
    """The catalog at a path, or the engine's default (None); CatalogError when there is none."""
    config: Callable[[Catalog, list[Query], str], dict[str, Any]]
    """The config that runs a selection (catalog, kept queries, a one-line description)."""


def _codeql_catalog(path: Path | None) -> Catalog:
    if path is None:
        raise CatalogError(
            "codeql needs a catalog: a CodeQL query pack folder (with qlpack.yml and .ql files)"
        )
    return codeql.read_packs(path)


def _bandit_catalog(path: Path | None) -> Catalog:
    if path is not None:
        raise CatalogError("bandit's catalog is the installed bandit package; give no catalog path")
    return bandit.read_installed()


def _checkov_catalog(path: Path | None) -> Catalog:
    # $TREELENS_CHECKOV names the executable, so a request can never make the daemon run a
    # program of its choosing
    if path is not None:
        raise CatalogError(
            "checkov's catalog is the installed checkov; give no catalog path "
            f"(${checkov.CHECKOV_ENV} names the executable)"
        )
    return checkov.read_installed()


def _semgrep_config(catalog: Catalog, selected: list[Query], _description: str) -> dict[str, Any]:
    return semgrep.config(catalog, selected)


def _bandit_config(_catalog: Catalog, selected: list[Query], _description: str) -> dict[str, Any]:
    return bandit.config(selected)


def _checkov_config(_catalog: Catalog, selected: list[Query], _description: str) -> dict[str, Any]:
    return checkov.config(selected)


REGISTRY: dict[str, Engine] = {
    "semgrep": Engine(semgrep.load, _semgrep_config),
    "codeql": Engine(_codeql_catalog, codeql.config),
    "bandit": Engine(_bandit_catalog, _bandit_config),
    "checkov": Engine(_checkov_catalog, _checkov_config),
}
"""Every engine suggest() knows, by the name the CLI and the protocol take."""
ENGINES: tuple[str, ...] = tuple(REGISTRY)
"""The engine names (the CLI's choices, ``treelens/suggestQuerySet``'s, the extension's)."""


def engine_named(name: str) -> Engine:
    """The registered engine called ``name``; a CatalogError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise CatalogError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}") from None


def load_catalog(engine: str, path: Path | None = None) -> Catalog:
    """The catalog of ``engine`` from ``path`` (or the engine's default).

    semgrep: a rules folder or a metadata index (.jsonl); default: the shared
    semgrep-rules index of a checkout. codeql: a query pack folder; no default.
    bandit: the installed bandit package (``path`` must be None). checkov: the installed
    checkov's checks (``path`` must be None; $TREELENS_CHECKOV names the executable).
    """
    return engine_named(engine).load(path)


def engine_config(catalog: Catalog, selected: list[Query], description: str) -> dict[str, Any]:
    """The catalog's engine's config for a selection: file name, file text, command-line args.
    Catalogs come from the registry's readers, so an unknown engine here is a bug (KeyError)."""
    return REGISTRY[catalog.engine].config(catalog, selected, description)


def suggest(
    analysis: Analysis,
    engine: str,
    catalog: Catalog,
    probabilities: dict[str, float] | None = None,
    thresholds: dict[str, float] | None = None,
    *,
    policy: Policy | None = None,
    note: str = "",
    name: str = "project",
    root: Path | None = None,
    read_words: bool = True,
) -> QuerySet:
    """The query set of ``engine`` worth running on the analysed project.

    With ``root``, the project's folder, the policy also reads what the analysis cannot
    show (every Terraform file's providers, the words of every file: ``read_words`` False
    skips that step), which lets it drop more without a miss.

    With ``probabilities`` (a model's, per label) the label gates apply, read against
    ``thresholds`` (the untuned 0.5 where a label has none) and the uncertainty band of
    model.labels. Without them the policy works from languages and technologies
    alone and the result says so (``basis``, ``note``); so does an engine the policy lists
    as ungated (checkov), whose files a label cannot rule out.
    """
    if catalog.engine != engine:
        raise ValueError(f"catalog {catalog.source} is a {catalog.engine} catalog, not {engine}")
    policy = policy or default_policy()
    labels = None
    if probabilities is not None and engine in policy.ungated_engines:
        ungated = f"the model's labels gate no {engine} query (the policy's ungated_engines)"
        note = f"{note}; {ungated}" if note else ungated
    elif probabilities is not None:
        labels = Labels(dict(probabilities), dict(thresholds or {}))
    selected: list[Query] = []
    reasons: dict[str, str] = {}
    conservative: dict[str, str] = {}
    for query, decision in decide_all(catalog.queries, analysis, engine, labels, policy, root, read_words):
        if decision.kept:
            selected.append(query)
            if decision.reason:
                conservative[query.id] = decision.reason
        else:
            reasons[query.id] = decision.reason
    basis = BASIS_MODEL if labels else BASIS_FACTS
    if not note:
        note = "" if labels else "no model: label gates off, decided on languages and technologies alone"
    description = f"Treelens: {len(selected)} of {len(catalog)} {engine} queries for {name}"
    return QuerySet(
        engine=engine,
        catalog=catalog,
        selected=selected,
        reasons=reasons,
        conservative=conservative,
        basis=basis,
        note=note,
        label_states={label: labels.state(label) for label in sorted(labels.probabilities)} if labels else {},
        config=engine_config(catalog, selected, description),
    )


@functools.cache
def default_policy() -> Policy:
    """The shipped policy.yaml, read once."""
    return Policy.load()
