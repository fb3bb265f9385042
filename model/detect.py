"""Deterministic languages and technologies of a project, computed beside the model.

Languages come from every file's name (extension or well-known file name) and include
config formats (yaml, json, hcl, dockerfile, nginx, ...), because SAST rules target
those too. Technologies come from dependency names and marker files. Names follow the
`languages` and `technology` fields of the semgrep-rules index where the two overlap,
so the query policy can match them directly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from treelens.model.filters import extension

LANGUAGE_BY_EXTENSION: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".ipynb": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".vue": "javascript",
    ".svelte": "javascript",
    ".java": "java",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".scala": "scala",
    ".sc": "scala",
    ".groovy": "groovy",
    ".gradle": "groovy",
    ".go": "go",
    ".rb": "ruby",
    ".erb": "ruby",
    ".rake": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".cshtml": "csharp",
    ".razor": "csharp",
    ".vb": "vb",
    ".fs": "fsharp",
    ".swift": "swift",
    ".m": "objectivec",
    ".mm": "objectivec",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".ino": "cpp",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".heex": "elixir",
    ".erl": "erlang",
    ".sol": "solidity",
    ".ml": "ocaml",
    ".mli": "ocaml",
    ".clj": "clojure",
    ".cljs": "clojure",
    ".cljc": "clojure",
    ".edn": "clojure",
    ".lua": "lua",
    ".r": "r",
    ".jl": "julia",
    ".hs": "haskell",
    ".cabal": "haskell",
    ".pl": "perl",
    ".pm": "perl",
    ".gd": "gdscript",
    ".zig": "zig",
    ".nim": "nim",
    ".cls": "apex",
    ".trigger": "apex",
    ".sh": "bash",
    ".bash": "bash",
    ".zsh": "bash",
    ".ps1": "powershell",
    ".bat": "batch",
    ".tf": "hcl",
    ".tfvars": "hcl",
    ".hcl": "hcl",
    ".bicep": "bicep",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".toml": "toml",
    ".xml": "xml",
    ".plist": "xml",
    ".ini": "ini",
    ".properties": "properties",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "css",
    ".sass": "css",
    ".less": "css",
    ".sql": "sql",
    ".proto": "protobuf",
    ".graphql": "graphql",
    ".gql": "graphql",
    ".jsp": "java",
    ".twig": "php",
    ".j2": "jinja",
    ".jinja": "jinja",
    ".jinja2": "jinja",
}
LANGUAGE_BY_NAME: dict[str, str] = {
    "Dockerfile": "dockerfile",
    "Containerfile": "dockerfile",
    "Makefile": "make",
    "nginx.conf": "nginx",
    "Gemfile": "ruby",
    "Rakefile": "ruby",
    "Podfile": "ruby",
    "Jenkinsfile": "groovy",
    "Vagrantfile": "ruby",
    "CMakeLists.txt": "cmake",
}
# nginx as a language (the config format semgrep's nginx rules read); the nginx technology
# marker below is a narrower pattern. Both are part of the model text (INPUT_FORMAT, the
# golden files): making them one changes what the model is told, so it needs a format bump.
NGINX_PATH = re.compile(r"(^|/)(nginx[^/]*/[^/]+\.conf|[^/]*nginx[^/]*\.conf(\.template)?)$")


@lru_cache(maxsize=1 << 18)
def language_of(path: str) -> str | None:
    """The language or config format of one file, or None when unknown (memoised)."""
    name = path.rsplit("/", 1)[-1]
    if name in LANGUAGE_BY_NAME:
        return LANGUAGE_BY_NAME[name]
    if name.startswith("Dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    if "nginx" in path and NGINX_PATH.search(path):
        return "nginx"
    return LANGUAGE_BY_EXTENSION.get(extension(name))


SHEBANG_LANGUAGES = {
    "sh": "bash", "bash": "bash", "dash": "bash", "ksh": "bash", "zsh": "bash",
    "python": "python", "node": "javascript", "ruby": "ruby", "php": "php", "perl": "perl", "lua": "lua",
}  # fmt: skip
"""Interpreter (as a shebang names it, version digits dropped) -> language, as semgrep reads
extension-less scripts."""


def language_of_shebang(first_line: str) -> str | None:
    """The language of a script from its first line (``#!/bin/sh``, ``#!/usr/bin/env python3``)."""
    if not first_line.startswith("#!"):
        return None
    words = first_line[2:].split()
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    if program == "env":
        program = next((w for w in words[1:] if not w.startswith("-")), "")
    return SHEBANG_LANGUAGES.get(program.rstrip("0123456789.").lower())


def detect_languages(paths: Iterable[str]) -> dict[str, int]:
    """File count per language, most files first (ties by name)."""
    counts = Counter(lang for path in paths if (lang := language_of(path)))
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


# --- technologies ----------------------------------------------------------------------

# technology -> dependency names (exact, case-insensitive) or prefixes ending in '*'
TECHNOLOGY_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "django": ("django", "djangorestframework", "django-*"),
    "flask": ("flask", "flask-*"),
    "fastapi": ("fastapi",),
    "pyramid": ("pyramid",),
    "sqlalchemy": ("sqlalchemy", "flask-sqlalchemy"),
    "celery": ("celery",),
    "express": ("express",),
    "koa": ("koa",),
    "nestjs": ("@nestjs/core",),
    "nextjs": ("next",),
    "nuxt": ("nuxt",),
    "react": ("react", "react-dom"),
    "react-native": ("react-native", "expo"),
    "vue": ("vue",),
    "angular": ("@angular/core",),
    "angularjs": ("angular",),
    "svelte": ("svelte", "@sveltejs/kit"),
    "jquery": ("jquery",),
    "electron": ("electron", "electron-builder"),
    "tauri": ("@tauri-apps/api", "@tauri-apps/cli", "tauri", "tauri-build"),
    "ionic": ("@ionic/angular", "@ionic/react", "@ionic/vue", "@ionic/core"),
    "capacitor": ("@capacitor/core", "@capacitor/android", "@capacitor/ios"),
    "cordova": ("cordova", "cordova-android", "cordova-ios"),
    "graphql": (
        "graphql",
        "apollo-server",
        "@apollo/server",
        "graphene",
        "strawberry-graphql",
        "github.com/99designs/gqlgen",
        "graphql-java",
    ),
    "grpc": ("grpcio", "@grpc/grpc-js", "google.golang.org/grpc", "grpc-netty", "tonic", "grpc"),
    "spring": ("spring-boot-starter-*", "spring-*", "org.springframework.boot"),
    "rails": ("rails", "railties"),
    "sinatra": ("sinatra",),
    "laravel": ("laravel/framework",),
    "symfony": ("symfony/*",),
    "wordpress": ("wpackagist-*", "johnpbloch/wordpress"),
    "aspnet": ("Microsoft.NET.Sdk.Web", "Microsoft.AspNetCore.*", "Swashbuckle.AspNetCore"),
    "gin": ("github.com/gin-gonic/gin",),
    "echo": ("github.com/labstack/echo", "github.com/labstack/echo/v4"),
    "fiber": ("github.com/gofiber/fiber/v2", "github.com/gofiber/fiber"),
    "gorilla": ("github.com/gorilla/mux", "github.com/gorilla/websocket"),
    "actix": ("actix-web",),
    "axum": ("axum",),
    "rocket": ("rocket",),
    "phoenix": ("phoenix",),
    "ktor": ("ktor-server-core", "ktor-server-netty", "io.ktor.plugin"),
    "flutter": ("flutter",),
    "android": (
        "com.android.application",
        "com.android.library",
        "appcompat",
        "androidx-*",
        "kotlin-android",
        "org.jetbrains.kotlin.android",
    ),
    "qt": ("Qt5", "Qt6", "Qt", "PyQt5", "PyQt6", "PySide2", "PySide6"),
    "gtk": ("GTK", "GTK3", "GTK4", "PkgConfig", "gtk", "gtk4", "pygobject", "gtk-rs"),
    "pygame": ("pygame",),
    "wpf": ("Microsoft.NET.Sdk.WindowsDesktop",),
    "avalonia": ("Avalonia", "Avalonia.Desktop"),
    "javafx": ("javafx-controls", "javafx-fxml", "org.openjfx.javafxplugin"),
    "click": ("click", "typer"),
    "cobra": ("github.com/spf13/cobra",),
    "clap": ("clap",),
    "commander": ("commander", "yargs", "oclif", "@oclif/core"),
    "terraform": (),
    "aws": ("aws",),
    "azure": ("azurerm", "azuread"),
    "gcp": ("google", "google-beta"),
    "aws-cdk": ("aws-cdk-lib", "aws-cdk", "@aws-cdk/core", "aws-cdk.core"),
    "pulumi": ("pulumi", "@pulumi/pulumi", "github.com/pulumi/pulumi/sdk/v3"),
    "aws-lambda": (
        "aws-lambda",
        "@types/aws-lambda",
        "aws-lambda-powertools",
        "github.com/aws/aws-lambda-go",
        "serverless",
    ),
    "kubernetes": ("kubernetes",),
    "helm": ("helm",),
    "docker": (),
    "docker-compose": (),
    "jwt": (
        "jsonwebtoken",
        "pyjwt",
        "jwt",
        "python-jose",
        "jjwt",
        "github.com/golang-jwt/jwt/v5",
        "github.com/golang-jwt/jwt/v4",
        "github.com/dgrijalva/jwt-go",
    ),
    "sequelize": ("sequelize",),
    "mongodb": ("mongoose", "mongodb", "pymongo", "motor"),
}

# technology <- marker files, by exact file name, by name suffix, or by a pattern on the
# file name (checked only when the name contains the pattern's keyword).
#
# These say what the model text names as a project's technologies, so they are strict and
# frozen with INPUT_FORMAT. The query policy's evidence for keeping a query
# (model/querysets/policy.yaml: the families' `files:` and the iac gate's `evidence:`) is a
# different, deliberately broader question: a file that *may* be a Kubernetes manifest, a
# compose file or an nginx config keeps its queries (any .conf, any yaml under deploy/).
# Neither derives from the other on purpose: narrowing the policy would drop queries the
# model cannot vouch for, widening these would change every model text.
MARKER_NAMES: dict[str, str] = {
    "manage.py": "django",
    "AndroidManifest.xml": "android",
    "Info.plist": "ios",
    "Podfile": "ios",
    "pubspec.yaml": "flutter",
    "artisan": "laravel",
    "Chart.yaml": "helm",
    "tauri.conf.json": "tauri",
    "cdk.json": "aws-cdk",
    "ansible.cfg": "ansible",
    "project.godot": "godot",
    "kustomization.yaml": "kubernetes",
    "kustomization.yml": "kubernetes",
    "serverless.yml": "serverless",
    "serverless.yaml": "serverless",
    "Pulumi.yaml": "pulumi",
    "Pulumi.yml": "pulumi",
    "electron-builder.yml": "electron",
    "electron-builder.yaml": "electron",
    "electron-builder.json": "electron",
    "forge.config.js": "electron",
    "forge.config.ts": "electron",
    "openapi.yaml": "openapi",
    "openapi.yml": "openapi",
    "openapi.json": "openapi",
    "swagger.yaml": "openapi",
    "swagger.yml": "openapi",
    "swagger.json": "openapi",
    "Containerfile": "docker",
    "Dockerfile": "docker",
    "ProjectVersion.txt": "unity",
}
MARKER_EXTENSIONS: dict[str, str] = {
    ".tf": "terraform",
    ".proto": "grpc",
    ".graphql": "graphql",
    ".gql": "graphql",
    ".xaml": "wpf",
    ".ui": "qt",
    ".qml": "qt",
    ".dockerfile": "docker",
    ".unity": "unity",
}
MARKER_PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    # (keyword in the path, technology, pattern searched in the path)
    ("Dockerfile", "docker", re.compile(r"(^|/)Dockerfile[.-][^/]*$")),
    ("compose", "docker-compose", re.compile(r"(^|/)(docker-)?compose(\.[\w-]+)?\.ya?ml$")),
    ("nginx", "nginx", re.compile(r"nginx[^/]*\.conf(\.template)?$|(^|/)nginx/[^/]+\.conf$")),
    ("k8s/", "kubernetes", re.compile(r"(^|/)k8s/([^/]+/)*[^/]+\.ya?ml$")),
    ("kube", "kubernetes", re.compile(r"(^|/)(kubernetes|kustomize)/([^/]+/)*[^/]+\.ya?ml$")),
    ("routes.rb", "rails", re.compile(r"(^|/)config/routes\.rb$")),
    ("playbook", "ansible", re.compile(r"(^|/)playbook[^/]*\.ya?ml$")),
    ("roles/", "ansible", re.compile(r"(^|/)roles/[^/]+/tasks/main\.ya?ml$")),
    ("template.y", "cloudformation", re.compile(r"(^|/)template\.ya?ml$")),
    ("cloudformation/", "cloudformation", re.compile(r"(^|/)cloudformation/[^/]+\.(ya?ml|json)$")),
    (".github/workflows/", "github-actions", re.compile(r"^\.github/workflows/[^/]+\.ya?ml$")),
    (".xcodeproj/", "ios", re.compile(r"\.xcodeproj/")),
    (".cfn.", "cloudformation", re.compile(r"\.cfn\.ya?ml$")),
)


@lru_cache(maxsize=1 << 18)
def marker_technologies(path: str) -> frozenset[str]:
    """Technologies that one file's path marks (memoised: the daemon re-asks per change)."""
    name = path.rsplit("/", 1)[-1]
    found = set()
    if name in MARKER_NAMES:
        found.add(MARKER_NAMES[name])
    if (tech := MARKER_EXTENSIONS.get(extension(name))) is not None:
        found.add(tech)
    for keyword, tech, pattern in MARKER_PATTERNS:
        if keyword in path and pattern.search(path):
            found.add(tech)
    return frozenset(found)


def _dependency_matchers() -> tuple[dict[str, str], list[tuple[str, str]]]:
    exact: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    for tech, names in TECHNOLOGY_DEPENDENCIES.items():
        for name in names:
            if name.endswith("*"):
                prefixes.append((name[:-1].lower(), tech))
            else:
                exact.setdefault(name.lower(), tech)
    return exact, prefixes


_EXACT, _PREFIXES = _dependency_matchers()


def technologies_from_dependencies(dependencies: dict[str, list[str]]) -> set[str]:
    """Technologies implied by package names (any ecosystem)."""
    found: set[str] = set()
    for names in dependencies.values():
        for name in names:
            key = name.lower()
            if key in _EXACT:
                found.add(_EXACT[key])
            found.update(tech for prefix, tech in _PREFIXES if key.startswith(prefix))
    return found


def detect_technologies(paths: Iterable[str], dependencies: dict[str, list[str]]) -> list[str]:
    """Sorted technology names from marker paths and dependency names.

    A project with terraform dependencies (providers) is a terraform project even when
    its .tf files were filtered; a Flutter marker only counts with the flutter SDK
    dependency, since pubspec.yaml alone is any Dart package.
    """
    found = technologies_from_dependencies(dependencies)
    for path in paths:
        found |= marker_technologies(path)
    if "flutter" in found and "flutter" not in {n.lower() for n in dependencies.get("pub", [])}:
        found.discard("flutter")
    if "terraform" in dependencies:
        found.add("terraform")
    return sorted(found)
