"""Languages and technologies of real projects from the shared data set."""

from __future__ import annotations

import pytest

from tests.shared_data import record
from treelens.model.detect import detect_languages, detect_technologies, language_of, language_of_shebang
from treelens.model.input import analyze
from treelens.model.tree import ProjectTree


@pytest.mark.parametrize(
    ("record_id", "languages", "technologies"),
    [
        ("18F/identity-oidc-sinatra", {"ruby", "javascript", "dockerfile"}, {"sinatra", "docker"}),
        ("AdamSzL/compose-weather-app", {"kotlin"}, {"android"}),
        ("DevOps-Boot/fastapi-k8s", {"python", "hcl", "yaml"}, {"terraform", "helm", "fastapi"}),
        ("NikSchaefer/gofiber-boilerplate", {"go"}, {"fiber"}),
        ("ArthurBrgn/laravel-todo-api", {"php"}, {"laravel"}),
        (
            "Darshpreet2000/LibreHealth-Toolkit-Cost-of-Care-Flutter-App",
            {"dart"},
            {"flutter", "android", "ios"},
        ),
        ("MaximBezpalchuk/spring-boot-university", {"java"}, {"spring"}),
        ("AndiHahn/AspNetCore-WebApi-CleanArchitecture", {"csharp"}, {"aspnet"}),
        ("ConflictHQ/boilerworks-phoenix-liveview", {"elixir"}, {"phoenix", "docker-compose"}),
    ],
)
def test_real_projects(record_id: str, languages: set[str], technologies: set[str]) -> None:
    facts = analyze(ProjectTree.from_record(record(record_id)))
    assert languages <= set(facts.languages), facts.languages
    assert technologies <= set(facts.technologies), facts.technologies


def test_config_formats_are_languages() -> None:
    assert language_of("deploy/nginx/site.conf") == "nginx"
    assert language_of("nginx.conf") == "nginx"
    assert language_of("docker/Dockerfile.prod") == "dockerfile"
    assert language_of("infra/main.tf") == "hcl"
    assert language_of("templates/base.html.j2") == "jinja"
    assert language_of("notes.unknownext") is None


def test_languages_are_counted_most_first() -> None:
    assert list(detect_languages(["a.py", "b.py", "c.js", "d.yaml"])) == ["python", "javascript", "yaml"]


def test_pubspec_alone_is_not_flutter() -> None:
    assert "flutter" not in detect_technologies(["pubspec.yaml", "lib/x.dart"], {"pub": ["http"]})
    assert "flutter" in detect_technologies(["pubspec.yaml"], {"pub": ["flutter"]})


def test_dependency_prefixes_and_case() -> None:
    techs = detect_technologies(
        [], {"pypi": ["Django", "flask-login"], "nuget": ["Microsoft.AspNetCore.Mvc"]}
    )
    assert {"django", "flask", "aspnet"} <= set(techs)


@pytest.mark.parametrize(
    ("first_line", "language"),
    [
        ("#!/bin/sh", "bash"),
        ("#!/usr/bin/env bash", "bash"),
        ("#!/usr/bin/env -S python3.12 -u", "python"),
        ("#!/usr/local/bin/node", "javascript"),
        ("#! /usr/bin/ruby -w", "ruby"),
        ("#!/usr/bin/env", None),
        ("#!/usr/bin/awk -f", None),
        ("echo hi", None),
        ("", None),
    ],
)
def test_shebangs_name_the_script_language(first_line: str, language: str | None) -> None:
    assert language_of_shebang(first_line) == language


def test_blade_templates_are_php_by_their_last_suffix() -> None:
    """A `.blade.php` view is PHP through `.php` alone (extension() gives the last suffix),
    which is why detect.py needs no `.blade.php` rule of its own."""
    assert language_of("resources/views/welcome.blade.php") == "php"
