"""Manifest files: which files count as manifests, which ones are read, and the package
names they declare.

The selection mirrors the shared data set (the same file names, shallowest first, at
most MAX_MANIFESTS, text cut at MAX_MANIFEST_BYTES), so a folder scanned at run time and
a data-set record of the same project hand the model the same dependency section.
Parsers never raise: a manifest that does not parse contributes no names.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable

import yaml

from treelens.model.guards import load_json
from treelens.model.lru import LRUCache

log = logging.getLogger(__name__)

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(text: str) -> object:
    return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


MAX_MANIFESTS = 40
MAX_MANIFEST_BYTES = 32 * 1024

REQUIREMENTS_PATTERN = re.compile(r"^requirements(-[\w.-]+)?\.txt$")


def is_manifest(path: str) -> bool:
    """True when the file's name marks it as a manifest (dependency or project file), as the
    data set reads them; ``manifest.json`` only as a web app's, under a ``public/`` folder (not
    a Flutter ``web/`` one, a Unity ``Packages/`` one or a release tool's). Every
    ``requirements-*.txt`` counts, where the data set reads only ``requirements.txt`` and
    ``requirements-dev.txt``: the query policy needs every dependency a project declares."""
    folder, _, name = path.rpartition("/")
    if name == WEB_APP_MANIFEST:
        return "public" in folder.split("/")
    return (
        name in MANIFEST_NAMES
        or name.endswith(MANIFEST_SUFFIXES)
        or REQUIREMENTS_PATTERN.match(name) is not None
    )


def select_manifests(paths: Iterable[str], limit: int = MAX_MANIFESTS) -> list[str]:
    """The manifests whose text is read: shallowest first, then by path, at most ``limit``."""
    found = [p for p in paths if is_manifest(p)]
    found.sort(key=lambda p: (p.count("/"), p))
    return found[:limit]


def cut_manifest(data: bytes) -> str:
    """Decode a manifest's bytes the way the data set stores them: at most 32 KiB, UTF-8."""
    return data[:MAX_MANIFEST_BYTES].decode("utf-8", errors="replace")


# --- parsers: (text) -> package names -------------------------------------------------

_PEP508_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _pep508_names(specs: Iterable[object]) -> list[str]:
    names = []
    for spec in specs:
        if isinstance(spec, str) and (m := _PEP508_NAME.match(spec)):
            names.append(m.group(1))
    return names


def _requirements_txt(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return _pep508_names(line for line in lines if line and not line.startswith("-"))


def _package_json(text: str) -> list[str]:
    data = load_json(text, "package.json")
    names: list[str] = []
    for key in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        section = data.get(key)
        if isinstance(section, dict):
            names.extend(section)
    return names


def _composer_json(text: str) -> list[str]:
    data = load_json(text, "composer.json")
    names: list[str] = []
    for key in ("require", "require-dev"):
        section = data.get(key)
        if isinstance(section, dict):
            names.extend(n for n in section if n != "php" and not n.startswith("ext-"))
    return names


def _toml_tables(data: dict, *keys: str) -> list[str]:
    """Keys of every table found at the dotted paths in ``keys``."""
    names: list[str] = []
    for dotted in keys:
        node: object = data
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            names.extend(node)
    return names


def _pyproject_toml(text: str) -> list[str]:
    data = tomllib.loads(text)
    project = data.get("project", {})
    names = _pep508_names(project.get("dependencies", []))
    for group in (project.get("optional-dependencies") or {}).values():
        names.extend(_pep508_names(group))
    for group in (data.get("dependency-groups") or {}).values():
        names.extend(_pep508_names(group))
    poetry = data.get("tool", {}).get("poetry", {})
    names.extend(_toml_tables(poetry, "dependencies", "dev-dependencies"))
    for group in (poetry.get("group") or {}).values():
        names.extend(_toml_tables(group, "dependencies"))
    return [n for n in names if n.lower() != "python"]


def _pipfile(text: str) -> list[str]:
    return _toml_tables(tomllib.loads(text), "packages", "dev-packages")


def _cargo_toml(text: str) -> list[str]:
    data = tomllib.loads(text)
    keys = ("dependencies", "dev-dependencies", "build-dependencies", "workspace.dependencies")
    names = _toml_tables(data, *keys)
    for target in (data.get("target") or {}).values():
        names.extend(_toml_tables(target, "dependencies", "dev-dependencies"))
    return names


def _setup_cfg(text: str) -> list[str]:
    names: list[str] = []
    collecting = False
    for line in text.splitlines():
        if re.match(r"^\s*(install_requires|tests_require)\s*=", line):
            collecting = True
            names.extend(_pep508_names([line.split("=", 1)[1]]))
        elif collecting and line[:1] in (" ", "\t") and line.strip():
            names.extend(_pep508_names([line.strip()]))
        elif line.strip():
            collecting = False
    return names


def _environment_yml(text: str) -> list[str]:
    data = _yaml(text) or {}
    names: list[str] = []
    for dep in data.get("dependencies") or []:
        if isinstance(dep, str):
            names.extend(_pep508_names([dep.split("::")[-1]]))
        elif isinstance(dep, dict):
            names.extend(_pep508_names(dep.get("pip") or []))
    return [n for n in names if n not in ("python", "pip")]


def _pubspec_yaml(text: str) -> list[str]:
    data = _yaml(text) or {}
    names: list[str] = []
    for key in ("dependencies", "dev_dependencies"):
        section = data.get(key)
        if isinstance(section, dict):
            names.extend(section)
    return names


def _chart_yaml(text: str) -> list[str]:
    data = _yaml(text) or {}
    return [d["name"] for d in data.get("dependencies") or [] if isinstance(d, dict) and "name" in d]


_IMAGE_NAME = re.compile(r"^(?:[^/]+\.[^/]+/)?(?:library/)?([^:@]+)")


def _docker_compose(text: str) -> list[str]:
    data = _yaml(text) or {}
    names: list[str] = []
    for service in (data.get("services") or {}).values():
        image = service.get("image") if isinstance(service, dict) else None
        if isinstance(image, str) and (m := _IMAGE_NAME.match(image.strip())):
            names.append(m.group(1).rsplit("/", 1)[-1])
    return names


def _go_mod(text: str) -> list[str]:
    names: list[str] = []
    in_block = False
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("require ("):
            in_block = True
        elif in_block and line == ")":
            in_block = False
        elif in_block and line:
            names.append(line.split()[0])
        elif line.startswith("require "):
            names.append(line.split()[1])
    return names


_GEM = re.compile(r"""^\s*gem\s+['"]([^'"]+)['"]""", re.M)
_GEMSPEC_DEP = re.compile(r"""add_(?:runtime_|development_)?dependency[\s(]+['"]([^'"]+)['"]""")
_POD = re.compile(r"""^\s*pod\s+['"]([^'"/]+)""", re.M)
_SWIFT_PACKAGE = re.compile(r"""\.package\(\s*(?:name:\s*"([^"]+)"\s*,\s*)?url:\s*"([^"]+)\"""")
_MIX_DEP = re.compile(r"\{\s*:([a-z0-9_]+)\s*,")
_GRADLE_COORD = re.compile(
    r"""\b(?:implementation|api|compile|compileOnly|runtimeOnly|kapt|ksp|annotationProcessor|"""
    r"""testImplementation|androidTestImplementation|debugImplementation|classpath)"""
    r"""\s*\(?\s*['"]([\w.-]+):([\w.-]+)"""
)
_GRADLE_CATALOG = re.compile(r"""\b(?:implementation|api|kapt|ksp|classpath)\s*\(\s*libs\.([\w.]+)""")
_GRADLE_PLUGIN = re.compile(
    r"""(?:\bid\s*\(?\s*['"]([\w.-]+)['"]|apply\s+plugin:\s*['"]([\w.-]+)['"]|\bkotlin\s*\(\s*"([\w.-]+)"\s*\))"""
)
_CMAKE_PACKAGE = re.compile(r"\bfind_package\s*\(\s*([A-Za-z0-9_]+)", re.I)
_TF_PROVIDER_SOURCE = re.compile(r"""source\s*=\s*"(?:[\w.-]+/)?([\w-]+)/([\w-]+)\"""")
_TF_PROVIDER_BLOCK = re.compile(r"""^\s*provider\s+"([\w-]+)\"""", re.M)


def _gemfile(text: str) -> list[str]:
    return _GEM.findall(text)


def _gemspec(text: str) -> list[str]:
    return _GEMSPEC_DEP.findall(text)


def _podfile(text: str) -> list[str]:
    return _POD.findall(text)


def _package_swift(text: str) -> list[str]:
    names = []
    for name, url in _SWIFT_PACKAGE.findall(text):
        names.append(name or url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))
    return names


def _mix_exs(text: str) -> list[str]:
    deps = text.split("defp deps", 1)
    return _MIX_DEP.findall(deps[1] if len(deps) == 2 else text)


def _gradle(text: str) -> list[str]:
    names = [artifact for _group, artifact in _GRADLE_COORD.findall(text)]
    names.extend(alias.replace(".", "-") for alias in _GRADLE_CATALOG.findall(text))
    names.extend(next(filter(None, groups)) for groups in _GRADLE_PLUGIN.findall(text))
    return names


def _cmake(text: str) -> list[str]:
    return _CMAKE_PACKAGE.findall(text)


def _terraform(text: str) -> list[str]:
    names = [provider for _ns, provider in _TF_PROVIDER_SOURCE.findall(text)]
    return names + _TF_PROVIDER_BLOCK.findall(text)


def _xml_root(text: str) -> ET.Element:
    # Manifests come from the workspace: refuse DTDs (entity expansion) before parsing.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ValueError("XML manifests with a DTD are not parsed")
    root = ET.fromstring(text.encode("utf-8"))  # noqa: S314 - DTDs refused above
    for element in root.iter():  # drop namespaces: pom.xml and csproj use them
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _pom_xml(text: str) -> list[str]:
    root = _xml_root(text)
    return [
        artifact.text.strip()
        for dep in root.iter("dependency")
        if (artifact := dep.find("artifactId")) is not None and artifact.text
    ]


def _msbuild_project(text: str) -> list[str]:
    root = _xml_root(text)
    names = [sdk] if (sdk := root.get("Sdk")) else []
    for ref in root.iter("PackageReference"):
        if name := ref.get("Include") or ref.get("Update"):
            names.append(name)
    return names


# ecosystem name, parser; chosen by file name (or suffix for *.tf, *.csproj, ...)
Parser = Callable[[str], list[str]]
PARSERS_BY_NAME: dict[str, tuple[str, Parser]] = {
    "package.json": ("npm", _package_json),
    "composer.json": ("composer", _composer_json),
    "pyproject.toml": ("pypi", _pyproject_toml),
    "Pipfile": ("pypi", _pipfile),
    "setup.cfg": ("pypi", _setup_cfg),
    "environment.yml": ("pypi", _environment_yml),
    "Cargo.toml": ("cargo", _cargo_toml),
    "go.mod": ("go", _go_mod),
    "Gemfile": ("rubygems", _gemfile),
    "Podfile": ("cocoapods", _podfile),
    "Package.swift": ("swiftpm", _package_swift),
    "pubspec.yaml": ("pub", _pubspec_yaml),
    "pom.xml": ("maven", _pom_xml),
    "build.gradle": ("gradle", _gradle),
    "build.gradle.kts": ("gradle", _gradle),
    "mix.exs": ("hex", _mix_exs),
    "CMakeLists.txt": ("cmake", _cmake),
    "Chart.yaml": ("helm", _chart_yaml),
    "docker-compose.yml": ("docker", _docker_compose),
    "docker-compose.yaml": ("docker", _docker_compose),
}
PARSERS_BY_SUFFIX: dict[str, tuple[str, Parser]] = {
    ".tf": ("terraform", _terraform),
    ".csproj": ("nuget", _msbuild_project),
    ".vbproj": ("nuget", _msbuild_project),
    ".fsproj": ("nuget", _msbuild_project),
    ".gemspec": ("rubygems", _gemspec),
}

MARKERS_WITHOUT_DEPENDENCIES: frozenset[str] = frozenset(
    {
        "angular.json",
        "serverless.yml",
        "vcpkg.json",
        "app.json",
        "tauri.conf.json",
        "settings.gradle",
        "settings.gradle.kts",
        "AndroidManifest.xml",
        "Info.plist",
        "electron-builder.yml",
        "platformio.ini",
        "library.properties",
        "openapi.yaml",
        "openapi.yml",
        "openapi.json",
        "swagger.yaml",
        "swagger.yml",
        "swagger.json",
    }
)
"""Project files the model text lists as manifests although no parser reads names from them."""
WEB_APP_MANIFEST = "manifest.json"
"""A marker too, where it is a web app's (``is_manifest``)."""
MANIFEST_NAMES: frozenset[str] = frozenset(PARSERS_BY_NAME) | MARKERS_WITHOUT_DEPENDENCIES
MANIFEST_SUFFIXES: tuple[str, ...] = (*PARSERS_BY_SUFFIX, ".cabal")
"""Manifests by name suffix: every parsed one, and .cabal (listed, not parsed)."""


def _parser_for(path: str) -> tuple[str, Parser] | None:
    name = path.rsplit("/", 1)[-1]
    if name in PARSERS_BY_NAME:
        return PARSERS_BY_NAME[name]
    if REQUIREMENTS_PATTERN.match(name):
        return ("pypi", _requirements_txt)
    for suffix, entry in PARSERS_BY_SUFFIX.items():
        if name.endswith(suffix):
            return entry
    return None


_PARSED: LRUCache[tuple[str, bytes], tuple[str, tuple[str, ...]] | None] = LRUCache(4096)
_PARSED_LOCK = threading.Lock()


def parse_manifest(path: str, text: str) -> tuple[str, tuple[str, ...]] | None:
    """The ecosystem and package names one manifest declares.

    None when the file is a marker without dependencies (AndroidManifest.xml, Info.plist,
    ...). A manifest that fails to parse yields its ecosystem with no names. Memoised by
    path and a digest of the text: the daemon re-describes a project after every change,
    and keeping the texts themselves as keys (up to 32 KiB each) would hold megabytes.
    """
    key = (path, hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())
    with _PARSED_LOCK:
        if key in _PARSED:
            return _PARSED.get(key)
    parsed = _parse_manifest(path, text)
    with _PARSED_LOCK:
        _PARSED.put(key, parsed)
    return parsed


def _parse_manifest(path: str, text: str) -> tuple[str, tuple[str, ...]] | None:
    entry = _parser_for(path)
    if entry is None:
        return None
    ecosystem, parser = entry
    try:
        names = parser(text)
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        RecursionError,
        ET.ParseError,
        yaml.YAMLError,
    ) as error:
        # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors. Parsers never
        # raise past here (a project's files are not ours to fix), but a parser bug shows
        # in the debug log rather than nowhere.
        log.debug("manifest %s: not parsed (%s: %.200s)", path, type(error).__name__, error)
        names = []
    return ecosystem, tuple(n.strip() for n in names if isinstance(n, str) and n.strip())


def dependencies(manifests: dict[str, str]) -> dict[str, list[str]]:
    """Package names per ecosystem across all manifests: de-duplicated, sorted."""
    found: dict[str, set[str]] = {}
    for path, text in manifests.items():
        parsed = parse_manifest(path, text)
        if parsed is not None and parsed[1]:
            found.setdefault(parsed[0], set()).update(parsed[1])
    return {eco: sorted(names) for eco, names in sorted(found.items())}
