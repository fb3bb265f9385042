"""Dependency parsing of real manifests from the shared data set, one case per ecosystem."""

from __future__ import annotations

import gc
import logging
import tracemalloc

import pytest

from tests.shared_data import labelled_records, record
from treelens.model.filters import PathFilter
from treelens.model.manifests import dependencies, is_manifest, parse_manifest, select_manifests

CASES = [
    # (record id, manifest path, ecosystem, names that must be found)
    ("18F/identity-oidc-sinatra", "package.json", "npm", {"jsdom", "@18f/identity-design-system"}),
    ("18F/identity-oidc-sinatra", "Gemfile", "rubygems", {"sinatra", "puma", "rspec"}),
    ("AkwasiAI/celery-worker-project", "requirements.txt", "pypi", {"celery", "redis", "openai"}),
    ("aio-libs/aiohttp-devtools", "requirements-dev.txt", "pypi", {"flake8", "mypy"}),
    ("Cvoluj/scrapy-products-tracker", "src/python/src/pyproject.toml", "pypi", {"alembic", "pika"}),
    ("Bloblblobl/dominion-pygame", "Pipfile", "pypi", {"grpcio", "pygame", "pyinstaller"}),
    ("DjangoCRM/django-crm", "setup.cfg", "pypi", {"aiohttp", "asgiref"}),
    ("ESGF/esgf-pyclient", "environment.yml", "pypi", {"requests", "jinja2"}),
    ("MaximBezpalchuk/spring-boot-university", "pom.xml", "maven", {"spring-boot-starter-web"}),
    ("Alfresco/alfresco-android-app", "build.gradle", "gradle", {"google-services"}),
    (
        "AKJAW/fuller-stack-kotlin-multiplatform",
        "build.gradle.kts",
        "gradle",
        {"kotlin-gradle-plugin", "io.gitlab.arturbosch.detekt"},
    ),
    ("NikSchaefer/gofiber-boilerplate", "go.mod", "go", {"github.com/gofiber/fiber/v2", "entgo.io/ent"}),
    ("DeveloperC286/monkey_interpreter", "Cargo.toml", "cargo", {"clap", "anyhow", "log"}),
    ("ArthurBrgn/laravel-todo-api", "composer.json", "composer", {"laravel/framework", "laravel/sanctum"}),
    (
        "Darshpreet2000/LibreHealth-Toolkit-Cost-of-Care-Flutter-App",
        "pubspec.yaml",
        "pub",
        {"flutter", "flutter_bloc", "mockito"},
    ),
    ("WSDOT/wsdot-ios-app", "Podfile", "cocoapods", {"Google-Mobile-Ads-SDK", "Firebase"}),
    ("Cap-go/capacitor-updater", "Package.swift", "swiftpm", {"Alamofire", "ZIPFoundation"}),
    (
        "AndiHahn/AspNetCore-WebApi-CleanArchitecture",
        "tests/CleanArchitecture.FunctionalTests/CleanArchitecture.FunctionalTests.csproj",
        "nuget",
        {"Microsoft.NET.Sdk", "Microsoft.AspNetCore.Mvc.Testing", "xunit"},
    ),
    ("authlete/authlete-ruby-gem", "authlete.gemspec", "rubygems", {"rest-client", "rake"}),
    ("ConflictHQ/boilerworks-phoenix-liveview", "app/mix.exs", "hex", {"phoenix", "ecto_sql"}),
    ("ConflictHQ/boilerworks-phoenix-liveview", "docker/docker-compose.yml", "docker", {"postgres", "redis"}),
    ("cterence/homelab-gitops", "k8s-apps/arr-stack/Chart.yaml", "helm", {"app-template"}),
    (
        "DevOps-Boot/fastapi-k8s",
        "terraform/deployments/preprod/providers.tf",
        "terraform",
        {"kubernetes", "helm", "aws"},
    ),
]


@pytest.mark.parametrize(("record_id", "path", "ecosystem", "expected"), CASES)
def test_real_manifest_parses(record_id: str, path: str, ecosystem: str, expected: set[str]) -> None:
    text = record(record_id)["manifests"][path]
    parsed = parse_manifest(path, text)
    assert parsed is not None
    found_ecosystem, names = parsed
    assert found_ecosystem == ecosystem
    assert expected <= set(names), f"missing {expected - set(names)} from {sorted(names)[:20]}"


def test_versions_and_comments_are_not_names() -> None:
    text = "# tools\nDjango>=4.2  # web\n-r base.txt\n--index-url https://x\nrequests[socks]==2.31\n\n"
    assert parse_manifest("requirements.txt", text) == ("pypi", ("Django", "requests"))


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("package.json", "{not json"),
        ("pyproject.toml", "[project\ndependencies = ["),
        ("pom.xml", "<project><dependencies>"),
        ("pubspec.yaml", "dependencies: [unclosed"),
        ("pom.xml", '<!DOCTYPE x [<!ENTITY a "aaaa">]><project>&a;</project>'),
        ("package.json", "[" * 100_000),
    ],
)
def test_broken_manifest_gives_no_names_and_no_error(path: str, text: str) -> None:
    ecosystem, names = parse_manifest(path, text)
    assert ecosystem and names == ()


def test_markers_are_manifests_without_dependencies() -> None:
    assert is_manifest("app/src/main/AndroidManifest.xml")
    assert parse_manifest("app/src/main/AndroidManifest.xml", "<manifest/>") is None
    assert not is_manifest("src/main.py")


def test_selection_matches_the_data_set() -> None:
    """A scanned folder reads the manifests the data set holds for the same tree, so the
    model sees at run time what it was trained on.

    Through the scanner's own path filter the selection equals the data set's on 539 of the
    552 records. The 13 left: 8 where we read more ``requirements-*.txt`` (the data set keeps
    ``requirements.txt`` and ``requirements-dev.txt``; the query policy wants every declared
    dependency), 3 where the data set holds manifests in ``build/`` or ``dist/`` folders the
    scanner skips, 2 it leaves out for no rule we can see (``binder/``, ``external/``)."""
    records = labelled_records().values()
    project = PathFilter().project_paths
    selected = (select_manifests(project([p for p, _s, _k in r["files"]])) for r in records)
    same = sum(set(chosen) == set(r["manifests"]) for chosen, r in zip(selected, records, strict=True))
    assert same >= 539, same


def test_web_app_manifests_count_where_the_data_set_reads_them() -> None:
    """The data set reads a ``manifest.json`` under ``public/`` (a web app's) and no other, and
    it reads ``serverless.yml`` and ``vcpkg.json``."""
    assert is_manifest("public/manifest.json") and is_manifest("client/public/manifest.json")
    assert is_manifest("resources/public/favicon/manifest.json")
    assert not is_manifest("web/manifest.json") and not is_manifest("Packages/manifest.json")
    assert not is_manifest("manifest.json") and not is_manifest(".release-please/manifest.json")
    assert is_manifest("services/api/serverless.yml") and is_manifest("vcpkg.json")


def test_dependencies_are_grouped_sorted_and_unique() -> None:
    manifests = {
        "a/package.json": '{"dependencies": {"react": "1", "express": "2"}}',
        "b/package.json": '{"devDependencies": {"react": "1"}}',
        "requirements.txt": "flask\n",
    }
    assert dependencies(manifests) == {"npm": ["express", "react"], "pypi": ["flask"]}


def test_a_manifest_that_fails_to_parse_is_named_in_the_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    """Parsers never raise, but a parser bug must be findable: the debug log names the file
    and the error."""
    with caplog.at_level(logging.DEBUG, logger="treelens.model.manifests"):
        assert parse_manifest("web/package.json", "{debug-log probe") == ("npm", ())
    assert "manifest web/package.json: not parsed (" in caplog.text and "not valid JSON" in caplog.text


def test_the_parse_memo_does_not_keep_manifest_texts() -> None:
    """The daemon lives for days and re-describes projects after every change: its memo of
    parsed manifests keeps results, not the texts (up to 32 KiB each, 4,096 of them)."""
    pad = "x" * 30_000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(64):
            text = f'{{"name": "memo{i}", "dependencies": {{"react": "1"}}, "pad": "{pad}"}}'
            assert parse_manifest(f"memo{i}/package.json", text) == ("npm", ("react",))
        del text
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 64 * len(pad) // 4, f"the memo kept {kept} bytes for 64 manifests"
