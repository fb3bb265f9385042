"""The query policy on fixture projects: the loss cases of the seed report, the label
gates with explicit probabilities, and a reason for every dropped query.

Each loss case is shown twice: the report's naive filter (hand-listed main languages,
technology tags that must be detected) drops the rules, and the policy keeps them. The
fixture rule set proves the kept rules really fire (tests/test_querysets_scan.py).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import pathspec
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.querysets_fixtures import FIXTURES, PROJECTS, RULES, analysis_of, copy_project
from tests.shared_data import DATA_DIR
from treelens.model.input import Analysis, analyze
from treelens.model.querysets import Policy, PolicyError, Query, load_catalog, suggest
from treelens.model.querysets.catalog import Catalog
from treelens.model.querysets.policy import (
    DEFAULT_POLICY,
    DETECTABLE_LANGUAGES,
    Decision,
    Labels,
    Project,
    decide_all,
    terraform_providers,
)
from treelens.model.tree import ProjectTree

INDEX = DATA_DIR / "semgrep-rules-index.jsonl"
LOSS_CASES = {
    # case -> (fixture project, rules of the fixture rule set, rules of the semgrep-rules index)
    "nginx config inside a Python repository": (
        "flask_app",
        ["generic.nginx.security.alias-path-traversal", "generic.nginx.security.insecure-ssl-version"],
        ["generic.nginx.security.alias-path-traversal", "generic.nginx.security.insecure-ssl-version"],
    ),
    "flask-tagged rules firing on Django templates": (
        "django_site",
        ["python.flask.security.xss.template-unescaped-with-safe"],
        [
            "python.flask.security.xss.audit.template-unescaped-with-safe",
            "python.flask.security.xss.audit.template-autoescape-off",
            "python.flask.security.xss.audit.template-unquoted-attribute-var",
        ],
    ),
    "JavaScript rules on the few JS files of a backend": (
        "flask_app",
        ["javascript.browser.security.insecure-innerhtml"],
        ["javascript.browser.security.insecure-innerhtml", "javascript.browser.security.eval-detected"],
    ),
    "correctness rules tagged js": (
        "flask_app",
        ["javascript.lang.correctness.eqeq-is-bad"],
        ["javascript.lang.correctness.missing-template-string-indicator"],
    ),
    "generic rules on markdown": (
        "flask_app",
        ["generic.secrets.security.detected-aws-access-key-id-value"],
        ["generic.secrets.security.detected-aws-access-key-id-value"],
    ),
}


@pytest.fixture(scope="module")
def analyses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Analysis]:
    root = tmp_path_factory.mktemp("projects")
    return {name: analysis_of(copy_project(name, root)) for name in PROJECTS}


@pytest.fixture(scope="module")
def rules() -> Catalog:
    return load_catalog("semgrep", RULES)


@pytest.fixture(scope="module")
def index() -> Catalog:
    if not INDEX.is_file():
        pytest.skip(f"shared index not found at {INDEX}")
    return load_catalog("semgrep", INDEX)


def naive_keep(query: Query, analysis: Analysis) -> bool:
    """The seed report's filter: the project's main languages (a fifth of its code files
    or more) and technology tags that must each be detected."""
    total = sum(analysis.languages.values())
    main = {lang for lang, n in analysis.languages.items() if n >= total / 5}
    tags = set(query.technologies) - set(query.languages)
    return bool(set(query.languages) & main) and tags <= set(analysis.technologies)


def selected_ids(analysis: Analysis, catalog: Catalog, **kwargs: object) -> set[str]:
    return {q.id for q in suggest(analysis, "semgrep", catalog, **kwargs).selected}  # type: ignore[arg-type]


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_case_rules_are_kept(
    case: str, analyses: dict[str, Analysis], rules: Catalog, index: Catalog
) -> None:
    project, fixture_rules, index_rules = LOSS_CASES[case]
    analysis = analyses[project]
    for catalog, wanted in ((rules, fixture_rules), (index, index_rules)):
        by_id = {q.id: q for q in catalog.queries}
        assert not any(naive_keep(by_id[r], analysis) for r in wanted), f"{case}: the naive filter keeps them"
        kept = selected_ids(analysis, catalog)
        assert set(wanted) <= kept, f"{case}: dropped {set(wanted) - kept}"


def test_the_loss_case_projects_are_what_they_claim(analyses: dict[str, Analysis]) -> None:
    flask = analyses["flask_app"]
    assert flask.technologies == ["flask"] and "nginx" not in flask.languages, "a plain .conf, not nginx.conf"
    assert flask.languages["javascript"] == 1 and flask.languages["python"] == 3
    assert "README.md" in flask.project_paths, "docs are noise for the model text, not for the policy"
    assert analyses["django_site"].technologies == ["django"]


def test_what_cannot_fire_is_dropped_with_a_reason(analyses: dict[str, Analysis], index: Catalog) -> None:
    react = suggest(analyses["react_app"], "semgrep", index)
    assert react.reasons["python.flask.security.audit.debug-enabled"] == "language python not in the project"
    assert "technology nginx not detected" in react.reasons["generic.nginx.security.alias-path-traversal"]
    terraform = suggest(analyses["terraform_infra"], "semgrep", index)
    kept = {q.id for q in terraform.selected}
    azure = [q.id for q in index.queries if q.source.startswith("terraform/azure/")]
    aws = [q.id for q in index.queries if q.source.startswith("terraform/aws/")]
    assert set(aws) <= kept, "the project declares the aws provider"
    assert not set(azure) & kept
    assert terraform.reasons[azure[0]].startswith("technology azure not detected")
    flask = suggest(analyses["flask_app"], "semgrep", index)
    express = "javascript.express.security.audit.express-ssrf"
    assert "technology express not detected" in flask.reasons[express]


@pytest.mark.parametrize("project", PROJECTS)
def test_every_query_is_kept_or_dropped_with_a_reason(
    project: str, analyses: dict[str, Analysis], index: Catalog
) -> None:
    result = suggest(analyses[project], "semgrep", index)
    data = result.to_json()
    assert set(data) >= {"engine", "selected", "excludedCount", "totalCount", "reasons", "config"}
    assert data["totalCount"] == 1967
    assert len(data["selected"]) + data["excludedCount"] == 1967
    assert set(data["selected"]).isdisjoint(data["reasons"])
    assert all(reason.strip() for reason in data["reasons"].values())
    assert 0 < len(data["selected"]) < 1967 / 2, "a real saving on every fixture"


def test_without_a_model_the_result_says_so(analyses: dict[str, Analysis], rules: Catalog) -> None:
    result = suggest(analyses["flask_app"], "semgrep", rules)
    assert result.basis == "languages and technologies"
    assert "no model" in result.note and result.label_states == {}
    with_model = suggest(analyses["flask_app"], "semgrep", rules, {"backend": 0.9}, {"backend": 0.5})
    assert with_model.basis == "model, languages and technologies"
    assert with_model.label_states["backend"] == "present"


def test_server_side_injection_needs_backend_or_api(analyses: dict[str, Analysis], rules: Catalog) -> None:
    django = analyses["django_site"]
    sqli = "python.django.security.injection.raw-query-format"
    thresholds = {"backend": 0.5, "has_api": 0.4}
    library = suggest(django, "semgrep", rules, {"backend": 0.05, "has_api": 0.1, "library": 0.9}, thresholds)
    assert sqli in library.reasons
    assert library.reasons[sqli].startswith("server-side-injection query")
    assert "backend 0.05 (threshold 0.50" in library.reasons[sqli]
    assert "python.lang.security.subprocess-shell-true" not in library.reasons, "not framework-bound"
    backend = suggest(django, "semgrep", rules, {"backend": 0.93, "has_api": 0.1}, thresholds)
    assert sqli in {q.id for q in backend.selected}


@pytest.mark.parametrize(("p", "kept"), [(0.49, True), (0.25, True), (0.24, False), (0.0, False)])
def test_an_uncertain_label_keeps_its_queries(
    p: float, kept: bool, analyses: dict[str, Analysis], rules: Catalog
) -> None:
    sqli = "python.django.security.injection.raw-query-format"
    result = suggest(analyses["django_site"], "semgrep", rules, {"backend": p, "has_api": 0.0})
    assert (sqli in {q.id for q in result.selected}) is kept
    if kept:
        assert "label uncertain" in result.conservative[sqli]
        assert result.label_states["backend"] == "uncertain"


def test_a_mobile_label_readmits_android_queries(tmp_path: Path, rules: Catalog) -> None:
    webview = "java.android.security.webview-javascript-enabled"
    tree = ProjectTree.from_paths(["app/src/main/java/com/acme/Main.java", "pom.xml"])
    tree.manifests["pom.xml"] = "<project><dependencies><dependency><artifactId>okhttp</artifactId>"
    tree.manifests["pom.xml"] += "</dependency></dependencies></project>"
    analysis = analyze(tree)
    # its pattern names no Android API module, so the android tag alone cannot drop it ...
    assert webview in {q.id for q in suggest(analysis, "semgrep", rules).selected}, "no model: kept"
    # ... but the mobile gate can, when the model says the project is not mobile
    assert suggest(analysis, "semgrep", rules, {"mobile": 0.1}).reasons[webview].startswith("mobile query")
    assert webview in {q.id for q in suggest(analysis, "semgrep", rules, {"mobile": 0.8}).selected}


def test_iac_queries_need_iac_or_iac_files(rules: Catalog, analyses: dict[str, Analysis]) -> None:
    privileged = "yaml.kubernetes.security.privileged-container"
    plain = analyze(ProjectTree.from_paths(["config/app.yaml", "main.py"]))
    # `securityContext: ... privileged: true` names no Kubernetes module: without a model the
    # tag cannot rule out that some YAML of the project holds it
    assert privileged in {q.id for q in suggest(plain, "semgrep", rules).selected}
    assert privileged in suggest(plain, "semgrep", rules, {"iac": 0.02}).reasons
    assert suggest(plain, "semgrep", rules, {"iac": 0.02}).reasons[privileged].startswith("iac query")
    assert privileged in {q.id for q in suggest(plain, "semgrep", rules, {"iac": 0.7}).selected}
    infra = analyses["terraform_infra"]
    assert privileged in {q.id for q in suggest(infra, "semgrep", rules, {"iac": 0.01}).selected}, (
        "IaC files present: kept whatever the model says"
    )


def test_unknown_frameworks_keep_framework_rules() -> None:
    """Python code and no Python manifest: Flask may be in use, so its rules stay. With a
    manifest that lists other packages, a flask rule whose patterns name flask (or whose
    body is unknown, as in the index) is dropped; one whose patterns name no library
    (`$APP.run(debug=True)` fits any app object) is kept: its tag cannot rule out a match."""
    named = Query(
        id="flask.named", engine="semgrep", languages=("python",), technologies=("flask",),
        patterns='{"pattern": "flask.render_template_string(...)"}',
    )  # fmt: skip
    indexed = Query(id="flask.indexed", engine="semgrep", languages=("python",), technologies=("flask",))
    anonymous = Query(
        id="flask.anonymous", engine="semgrep", languages=("python",), technologies=("flask",),
        patterns='{"pattern": "$app.run(..., debug=true, ...)"}',
    )  # fmt: skip
    catalog = Catalog(engine="semgrep", source="test", kind="index", queries=(named, indexed, anonymous))
    scripts = analyze(ProjectTree.from_paths(["serve.py", "Dockerfile"]))
    result = suggest(scripts, "semgrep", catalog)
    assert [q.id for q in result.selected] == ["flask.named", "flask.indexed", "flask.anonymous"]
    assert "no pypi manifest, frameworks unknown" in result.conservative["flask.named"]
    declared = ProjectTree.from_paths(["serve.py", "requirements.txt"])
    declared.manifests["requirements.txt"] = "click\n"
    result = suggest(analyze(declared), "semgrep", catalog)
    assert set(result.reasons) == {"flask.named", "flask.indexed"}
    assert [q.id for q in result.selected] == ["flask.anonymous"]


def test_paths_include_decides_generic_rules(rules: Catalog) -> None:
    markdown_rule = Query(id="docs.leak", engine="semgrep", languages=("generic",), include=("*.md",))
    catalog = Catalog(engine="semgrep", source="test", kind="index", queries=(markdown_rule,))
    with_docs = analyze(ProjectTree.from_paths(["main.go", "docs/guide.md"]))
    without = analyze(ProjectTree.from_paths(["main.go"]))
    assert suggest(with_docs, "semgrep", catalog).selected == [markdown_rule]
    assert "no file matches its paths" in suggest(without, "semgrep", catalog).reasons["docs.leak"]


def test_semgrep_javascript_rules_stay_for_typescript_only_projects() -> None:
    """semgrep runs `languages: [javascript]` rules on .ts/.tsx files too (found by the bench)."""
    js_only = Query(id="js.only", engine="semgrep", languages=("javascript",))
    ts_only = Query(id="ts.only", engine="semgrep", languages=("typescript",))
    catalog = Catalog(engine="semgrep", source="test", kind="index", queries=(js_only, ts_only))
    typescript = analyze(ProjectTree.from_paths(["src/ids.ts", "src/App.tsx"]))
    assert [q.id for q in suggest(typescript, "semgrep", catalog).selected] == ["js.only", "ts.only"]
    javascript = analyze(ProjectTree.from_paths(["src/ids.js"]))
    assert suggest(javascript, "semgrep", catalog).reasons == {
        "ts.only": "language typescript not in the project"
    }


SEMGREP_EXTENSIONS_LEFT = {
    ("json", ".ipynb"): "model.detect names notebooks python: a notebook-only project drops JSON rules",
}
"""semgrep extensions the policy knowingly reads as another language, and what that costs."""


def test_files_count_as_the_language_semgrep_scans_them_as() -> None:
    """Every extension the installed semgrep scans as a language the policy can rule out
    (its own lang.json) is read as that language: `.phtml` and `.tpl` as PHP, `.c++` as C++,
    `.tofu` as Terraform. A new semgrep that adds one fails here until policy.yaml's
    ``scanned_extensions`` lists it."""
    table = json.loads((resources.files("semgrep") / "semgrep_interfaces" / "lang.json").read_text())
    policy = Policy.load()
    unread = []
    for language in table:
        names = {policy.language(key) for key in language["keys"]}
        if not names <= DETECTABLE_LANGUAGES or names & set(policy.generic_languages):
            continue  # the policy never rules these out by files
        equivalents = policy.language_equivalents["semgrep"]
        wanted = {e for name in names for e in equivalents.get(name, (name,))}
        for ext in language["exts"]:
            path = f"src/file{ext}" if ext.startswith(".") else f"src/{ext}"
            known = (language["id"], ext) in SEMGREP_EXTENSIONS_LEFT
            if policy.language_of(path) not in wanted and not known:
                unread.append(f"{ext} ({language['id']}; read as {policy.language_of(path)})")
    assert unread == [], f"semgrep scans these as a language the policy does not read them as: {unread}"


def test_a_php_template_keeps_php_rules() -> None:
    """A project whose only PHP is a `.phtml` template still gets PHP rules: semgrep scans it."""
    php = Query(id="php.echo", engine="semgrep", languages=("php",))
    catalog = Catalog(engine="semgrep", source="test", kind="index", queries=(php,))
    templates = analyze(ProjectTree.from_paths(["app.py", "views/page.phtml"]))
    assert [q.id for q in suggest(templates, "semgrep", catalog).selected] == ["php.echo"]
    assert suggest(analyze(ProjectTree.from_paths(["app.py"])), "semgrep", catalog).selected == []


def test_codeql_queries_by_language_and_gates(analyses: dict[str, Analysis]) -> None:
    catalog = load_catalog("codeql", FIXTURES / "codeql")
    result = suggest(analyses["flask_app"], "codeql", catalog)
    python = {"py/sql-injection", "py/flask-debug", "py/unused-import"}
    assert {q.id for q in result.selected} == {*python, "js/xss"}
    assert result.reasons == {"java/android/webview-debugging-enabled": "language java not in the project"}
    api_less = suggest(analyses["flask_app"], "codeql", catalog, {"backend": 0.01, "has_api": 0.01})
    assert "py/sql-injection" in {q.id for q in api_less.selected}, "CodeQL queries carry no framework tags"


def test_bandit_drops_framework_tests_on_a_plain_cli() -> None:
    catalog = load_catalog("bandit")
    tree = ProjectTree.from_paths(["pyproject.toml", "src/tool/cli.py"])
    tree.manifests["pyproject.toml"] = '[project]\nname = "tool"\ndependencies = ["click", "requests"]\n'
    result = suggest(analyze(tree), "bandit", catalog)
    assert {"B201", "B610", "B611", "B701", "B702", "B703", "B308"} <= set(result.reasons)
    assert result.reasons["B201"].startswith("technology flask not detected")
    assert {"B101", "B602", "B301", "B501"} <= {q.id for q in result.selected}
    no_python = suggest(analyze(ProjectTree.from_paths(["main.go"])), "bandit", catalog)
    assert no_python.selected == [] and no_python.config["args"] == []


PATTERNS = [
    "*.conf",
    "**/templates/**/*.html",
    "**/k8s/**",
    "manage.py",
    "sites-available/*",
    "*.y*ml",
    "a/*.md",
]


@given(
    paths=st.lists(
        st.lists(
            st.sampled_from(["a", "k8s", "templates", "x.conf", "manage.py", "s.yml", "r.md", "t.html"]),
            min_size=1,
            max_size=4,
        ).map("/".join),
        max_size=12,
    ),
    patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3).map(tuple),
    exclude=st.lists(st.sampled_from(PATTERNS), max_size=1).map(tuple),
)
def test_file_matching_agrees_with_pathspec(
    paths: list[str], patterns: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    """The literal-prefiltered matcher gives the same answer as pathspec path by path."""
    project = Project(paths, frozenset(), frozenset(), frozenset(), frozenset())
    include, excluded = (
        pathspec.GitIgnoreSpec.from_lines(patterns),
        pathspec.GitIgnoreSpec.from_lines(exclude),
    )
    expected = any(include.match_file(p) and not (exclude and excluded.match_file(p)) for p in paths)
    assert project.has_file(patterns, exclude) is expected


def test_a_malformed_policy_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\nuncertain: {ratio: 0.5}\n")
    with pytest.raises(PolicyError, match=r"policy\.yaml: malformed query policy"):
        Policy.load(bad)
    bad.write_text("version: 2\n")
    with pytest.raises(PolicyError, match="version: 1"):
        Policy.load(bad)


def test_evidence_files_count_at_any_depth() -> None:
    """A monorepo's workflow under backend/.github/workflows/ is GitHub Actions evidence as
    much as one at the root (a miss found by the bench on a real repository)."""
    actions = Query(
        id="yaml.github-actions.security.run-shell-injection",
        engine="semgrep",
        languages=("yaml",),
        technologies=("github-actions",),
    )
    catalog = Catalog(engine="semgrep", source="test", kind="index", queries=(actions,))
    for workflow in (".github/workflows/ci.yml", "backend/.github/workflows/ci.yml"):
        nested = analyze(ProjectTree.from_paths(["backend/app.py", workflow]))
        assert suggest(nested, "semgrep", catalog).selected == [actions], workflow
    elsewhere = analyze(ProjectTree.from_paths(["backend/app.py", "backend/workflows/ci.yml"]))
    assert (
        "technology github-actions not detected" in suggest(elsewhere, "semgrep", catalog).reasons[actions.id]
    )


AWS_VERSIONS = 'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws" }\n  }\n}\n'
AWS_VPC = {"versions.tf": AWS_VERSIONS, "main.tf": 'resource "aws_vpc" "this" {}\n'}
AZURE_STORAGE = (
    'resource "azurerm_storage_account" "logs" {\n  name = "logs"\n  enable_https_traffic_only = false\n}\n'
)
IAC = Labels({"iac": 0.9}, {})


def cloud_decisions(
    folder: Path, catalog: Catalog, labels: Labels | None, root: Path | None
) -> dict[str, Decision]:
    """The decisions on the fixture rule set's terraform/<cloud>/ rules, by cloud."""
    analysis = analysis_of(folder)
    decided = decide_all(catalog.queries, analysis, "semgrep", labels, Policy.load(), root=root)
    clouds = {q.source.split("/")[1]: d for q, d in decided if q.source.startswith("terraform/")}
    assert set(clouds) == {"aws", "azure", "gcp"}, "one fixture rule per cloud"
    return clouds


CLOUD_RULE_WORDS = "# acl enable_https_traffic_only ip_configuration ipv4_enabled settings resource\n"
"""Every word the fixture cloud rules' patterns need, in a comment: the words step (tested
apart) keeps them, so these tests see what the providers decide."""


def terraform_project(root: Path, **files: str) -> Path:
    for name, text in {"words.tf": CLOUD_RULE_WORDS, **files}.items():
        (root / name).write_text(text)
    return root


def test_the_iac_label_does_not_readmit_an_unused_cloud(tmp_path: Path, rules: Catalog) -> None:
    """`iac` says there is IaC, not which cloud: on an AWS-only module (terraform-aws-vpc)
    the Azure and GCP rules, which the label used to re-admit, cannot fire. Without the
    project's folder the providers are not known in full, and the label still re-admits."""
    folder = terraform_project(tmp_path, **AWS_VPC)
    clouds = cloud_decisions(folder, rules, IAC, root=folder)
    assert clouds["aws"].kept
    for cloud in ("azure", "gcp"):
        assert not clouds[cloud].kept
        assert clouds[cloud].reason == (
            f"technology {cloud} not detected (family cloud-{cloud}: no member in any terraform file); "
            "not re-admitted by iac: model says iac"
        )
    readmitted = cloud_decisions(folder, rules, IAC, root=None)
    assert all(d.kept for d in readmitted.values())
    else_dropped = "iac: model says iac; else dropped: technology azure not detected"
    assert readmitted["azure"].reason.startswith(else_dropped)


@pytest.mark.parametrize("declared", [True, False], ids=["aws-declared", "nothing-declared"])
def test_a_resource_type_prefix_is_a_provider_without_any_declaration(
    tmp_path: Path, rules: Catalog, declared: bool
) -> None:
    """Terraform infers hashicorp/azurerm from `resource "azurerm_..."` alone: the Azure
    rule stays (with or without a model), whether or not another provider is declared;
    GCP, used nowhere, goes even though the iac label holds."""
    files = {"versions.tf": AWS_VERSIONS} if declared else {}
    folder = terraform_project(tmp_path, **files, **{"storage.tf": AZURE_STORAGE})
    for labels in (IAC, None):
        clouds = cloud_decisions(folder, rules, labels, root=folder)
        assert clouds["azure"].kept and clouds["aws"].kept is declared, labels
    assert not cloud_decisions(folder, rules, IAC, root=folder)["gcp"].kept


def test_a_project_declaring_two_clouds_keeps_both(tmp_path: Path, rules: Catalog) -> None:
    folder = terraform_project(
        tmp_path,
        **{
            "providers.tf": 'provider "azurerm" {\n  features {}\n}\n',
            "gcp.tf": 'terraform {\n  required_providers { google = { source = "hashicorp/google" } }\n}\n',
        },
    )
    clouds = cloud_decisions(folder, rules, IAC, root=folder)
    assert clouds["azure"].kept and clouds["gcp"].kept
    assert not clouds["aws"].kept and "not re-admitted by iac" in clouds["aws"].reason


def test_without_a_model_the_terraform_files_drop_nothing_more(tmp_path: Path, rules: Catalog) -> None:
    """No label gate: reading the files only adds providers, so nothing the analysis kept is dropped."""
    folder = terraform_project(tmp_path, **AWS_VPC)
    with_files = cloud_decisions(folder, rules, None, root=folder)
    without = cloud_decisions(folder, rules, None, root=None)
    assert {c: d.kept for c, d in with_files.items()} == {c: d.kept for c, d in without.items()}
    assert {c: d.kept for c, d in with_files.items()} == {"aws": True, "azure": False, "gcp": False}


def test_a_terraform_file_that_cannot_be_read_decides_nothing(tmp_path: Path, rules: Catalog) -> None:
    """A .tf file gone between the scan and the policy (or over MAX_TERRAFORM_BYTES): the
    providers are not known in full, so the label re-admits the other clouds as before."""
    folder = terraform_project(tmp_path, **{"versions.tf": AWS_VERSIONS, "storage.tf": AZURE_STORAGE})
    analysis = analysis_of(folder)
    (folder / "storage.tf").unlink()
    assert terraform_providers(folder, analysis.project_paths) is None
    decided = decide_all(rules.queries, analysis, "semgrep", IAC, Policy.load(), root=folder)
    assert all(d.kept for q, d in decided if q.source.startswith("terraform/"))
    assert terraform_providers(folder, ["versions.tf", "stack.tf.json"]) is None, "JSON syntax is not read"


@pytest.mark.parametrize("swap", ["symlink", "fifo"])
def test_a_hostile_terraform_file_is_not_followed_and_decides_nothing(
    tmp_path: Path, swap: str, rules: Catalog
) -> None:
    """A workspace may be hostile: a .tf that is a link out of it (here to a file naming
    azurerm) or a FIFO (which would block a plain read forever) is not read, so nothing
    is decided by files; the label re-admits the other clouds as before."""
    folder = terraform_project(tmp_path, **{"versions.tf": AWS_VERSIONS, "storage.tf": AWS_VERSIONS})
    analysis = analysis_of(folder)
    (folder / "storage.tf").unlink()
    if swap == "symlink":
        outside = tmp_path / "outside.tf"
        outside.write_text(AZURE_STORAGE)
        (folder / "storage.tf").symlink_to(outside)
    else:
        os.mkfifo(folder / "storage.tf")
    assert terraform_providers(folder, analysis.project_paths) is None
    decided = decide_all(rules.queries, analysis, "semgrep", IAC, Policy.load(), root=folder)
    assert all(d.kept for q, d in decided if q.source.startswith("terraform/"))


def test_decided_by_files_needs_an_ecosystem_the_policy_reads(tmp_path: Path) -> None:
    policy = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    policy["families"]["python-web"]["decided_by_files"] = True
    bad = tmp_path / "policy.yaml"
    bad.write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError, match=r"family python-web: decided_by_files needs ecosystems"):
        Policy.load(bad)
