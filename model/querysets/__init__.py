"""SAST query sets: which semgrep rules, CodeQL queries, bandit tests and checkov checks are
worth running on a project, and the engine configs that run just those.

catalog (queries with facts) + project facts (+ the model's labels) --policy.yaml-->
kept queries, a reason for every dropped one, and a config per engine.
"""

from treelens.model.querysets.catalog import Catalog, CatalogError, Query
from treelens.model.querysets.policy import Policy, PolicyError
from treelens.model.querysets.suggest import (
    ENGINES,
    ModelLabels,
    QuerySet,
    load_catalog,
    suggest,
)

__all__ = [
    "ENGINES",
    "Catalog",
    "CatalogError",
    "ModelLabels",
    "Policy",
    "PolicyError",
    "Query",
    "QuerySet",
    "load_catalog",
    "suggest",
]
