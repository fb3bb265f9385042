"""Shape facts: what a project builds and ships, read from its manifests and file names.

The tree says which languages and frameworks a project uses; whether it is a command-line
tool, a desktop app or a library is decided by smaller things: an npm ``bin`` field, a
``[project.scripts]`` table, a Cargo ``[lib]``, a Go ``cmd/`` folder, a GUI toolkit among
the dependencies, a ``.desktop`` or ``.xaml`` file, a gemspec. In a 4,096-token model
text those few tokens are lost among the paths, so ``model.input.describe`` writes the
facts found here on a line of their own, which the wide path weighs apart. Input format 3
added the compose-desktop, desktop-runners, macos-app, game-assets, declared-exe and
man-page facts and more CLI and GUI libraries (desktop F1 0.58 -> 0.68 on the wide path).
Input format 5 added declared-cli, a command-line program named as such in a manifest's
keywords, categories or classifiers (cli F1 0.65 -> 0.69 on the wide path over 40 folds).

Facts are names (``pkg-bin``, ``gui-deps``): the model learns what they mean. Only the
presence of a fact matters, never how often it occurs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_CLI_LIBRARIES = frozenset(
    [
        "click",
        "typer",
        "docopt",
        "fire",
        "commander",
        "yargs",
        "oclif",
        "meow",
        "clap",
        "structopt",
        "picocli",
        "thor",
        "cobra",
        "kingpin",
        "argh",
        "cac",
        "caporal",
        "inquirer",
        "ink",
        "cliff",
        "gflags",
        "spf13",
        "tview",
        "tcell",
        "bubbletea",
        "gocui",
        "ratatui",
        "crossterm",
        "termion",
        "cursive",
        "dialoguer",
        "indicatif",
        "curses",
        "ncurses",
        "blessed",
        "prompt_toolkit",
        "questionary",
        "jcommander",
        "clikt",
        "spectre",
        "commandlineparser",
        "gli",
        "cleo",
        "cliffy",
        "clipanion",
        "sade",
        "gluegun",
        "enquirer",
        "dcli",
    ]
)
_URFAVE_CLI = re.compile(r"\burfave/cli\b", re.IGNORECASE)
_GUI_LIBRARIES = frozenset(
    [
        "electron",
        "tauri",
        "pyqt5",
        "pyqt6",
        "pyside2",
        "pyside6",
        "wxpython",
        "kivy",
        "gtk",
        "gi",
        "javafx",
        "avalonia",
        "winforms",
        "wpf",
        "fyne",
        "wails",
        "flutter_desktop",
        "nwjs",
        "neutralino",
        "qt",
        "qt5",
        "qt6",
        "qml",
        "qtquick",
        "gotk3",
        "gotk4",
        "gtk3",
        "gtk4",
        "gtkmm",
        "libadwaita",
        "libhandy",
        "wxwidgets",
        "fltk",
        "sfml",
        "glfw",
        "monogame",
        "sdl",
        "lwjgl",
        "gdx",
        "swt",
        "tornadofx",
        "bevy",
        "ggez",
        "macroquad",
        "pyglet",
        "pysimplegui",
        "dearpygui",
        "flet",
        "toga",
        "pywebview",
        "gioui",
        "lorca",
        "webview2",
        "cefsharp",
        "nodegui",
        "photino",
        "tkinter",
        "customtkinter",
        "pygame",
        "sdl2",
        "raylib",
        "imgui",
        "egui",
        "iced",
        "druid",
        "slint",
        "swing",
        "appkit",
        "cocoa",
    ]
)
"""Library names matched as whole words of the manifests (``rich-click`` holds the word
``click``), case-insensitively: a set look-up, where one regex alternation per fact took
10 ms on a large monorepo's manifests."""
_WORD = re.compile(r"\w+")
_MAN_PAGE = re.compile(r"\.[18](\.md|\.ronn|\.adoc)?$")
"""Man pages of sections 1 (commands) and 8 (administration), as written or as sources."""
_DECLARED_LISTS = re.compile(
    r"""["']?\b(?:keywords|categories|classifiers)["']?\s*[:=]\s*\[([^\]]*)\]"""
    r"|^(?:keywords|classifiers)[ \t]*=[ \t]*(.*(?:\n[ \t]+.+)*)"
    r"|<PackageTags>([^<]*)<",
    re.MULTILINE | re.IGNORECASE,
)
"""What a manifest says its package is, in the lists meant for that: keywords, Cargo's
categories and PyPI's classifiers (a JSON, TOML or ``setup.py`` list, or ``setup.cfg``'s
one line or indented lines) and a .csproj's PackageTags. Descriptions are left out: free
text says "console" or "terminal" of web apps too."""
_CLI_DECLARED = frozenset({"cli", "command-line", "command-line-utilities", "console", "terminal"})
"""Words of those lists that declare a command-line program (Cargo's category
``command-line-utilities``, PyPI's ``Environment :: Console``): 21 of the 23 labelled records
that declare one are CLIs."""
_DECLARED_WORD = re.compile(r"[a-z][a-z0-9-]*")
_DESKTOP_SUFFIXES = (".desktop", ".xaml", ".ui", ".rc", ".qrc", ".glade", ".nib", ".xib")
_DESKTOP_FILES = frozenset(
    {
        "tauri.conf.json",
        "electron-builder.yml",
        "electron-builder.json",
        "forge.config.js",
        "forge.config.ts",
        "wails.json",
        "export_presets.cfg",
    }
)


@dataclass(frozen=True)
class _Project:
    """What the facts are read from: lower-cased paths, file names, top folders, manifests."""

    paths: Sequence[str]
    names: frozenset[str]
    top: frozenset[str]
    manifests: str
    """Every manifest's path and text, one after the other."""
    words: frozenset[str]
    """The lower-cased words (``\\w+`` runs) of ``manifests``."""


def _declares_cli(project: _Project) -> bool:
    """A keyword, category or classifier of some manifest names a command-line program."""
    for match in _DECLARED_LISTS.finditer(project.manifests):
        listed = " ".join(group for group in match.groups() if group).lower()
        if not _CLI_DECLARED.isdisjoint(_DECLARED_WORD.findall(listed)):
            return True
    return False


def _search(pattern: str, flags: int = 0) -> Callable[[_Project], bool]:
    compiled = re.compile(pattern, flags)
    return lambda p: compiled.search(p.manifests) is not None


FACTS: dict[str, Callable[[_Project], bool]] = {
    "pkg-bin": _search(r'"bin"\s*:'),
    "py-scripts": _search(r"\[(project|tool\.poetry)\.scripts\]|console_scripts|entry_points|scripts\s*="),
    "cargo-bin": lambda p: (
        "[[bin]]" in p.manifests
        or any(
            path.endswith("src/main.rs") or "/src/bin/" in path or path.startswith("src/bin/")
            for path in p.paths
        )
    ),
    "cargo-lib": lambda p: "[lib]" in p.manifests or "src/lib.rs" in p.paths,
    "go-cmd": lambda p: "cmd" in p.top,
    "go-main-root": lambda p: "main.go" in p.paths,
    "bin-dir": lambda p: "bin" in p.top,
    "goreleaser": lambda p: any(".goreleaser" in name for name in p.names),
    "cli-deps": lambda p: (
        not _CLI_LIBRARIES.isdisjoint(p.words) or _URFAVE_CLI.search(p.manifests) is not None
    ),
    "gui-deps": lambda p: not _GUI_LIBRARIES.isdisjoint(p.words),
    "desktop-files": lambda p: (
        any(name.endswith(_DESKTOP_SUFFIXES) for name in p.names) or not _DESKTOP_FILES.isdisjoint(p.names)
    ),
    "compose-desktop": _search(r"compose\.desktop|org\.jetbrains\.compose"),
    "desktop-runners": lambda p: (
        "pubspec.yaml" in p.names and not p.top.isdisjoint({"windows", "linux", "macos"})
    ),
    "macos-app": _search(
        r"LSMinimumSystemVersion|LSApplicationCategoryType|NSPrincipalClass|MACOSX_DEPLOYMENT_TARGET"
    ),
    "game-assets": lambda p: any(name.endswith((".mgcb", ".xnb", ".tmx", ".ogg")) for name in p.names),
    "declared-exe": _search(
        r"^\s*executables?\s*[:=]|\.executables\s*=|^executable\s+\S|<PackAsTool>\s*true",
        re.MULTILINE | re.IGNORECASE,
    ),
    "declared-cli": _declares_cli,
    "man-page": lambda p: (
        "man" in p.top or "manpage" in p.top or any(_MAN_PAGE.search(name) for name in p.names)
    ),
    "winexe": _search(r"<OutputType>\s*WinExe|UseWPF|UseWindowsForms", re.IGNORECASE),
    "exe": _search(r"<OutputType>\s*Exe", re.IGNORECASE),
    "pkg-main": _search(r'"(main|exports|module|types|typings)"\s*:'),
    "pkg-private": _search(r'"private"\s*:\s*true'),
    "gemspec": lambda p: any(name.endswith((".gemspec", ".podspec", ".nuspec")) for name in p.names),
    "maven-publish": _search(r"maven-publish|signing\s*\{|nexus|<distributionManagement>"),
    "composer-lib": _search(r'"type"\s*:\s*"library"'),
    "py-pkg-meta": _search(r"^\[project\]|setup\(", re.MULTILINE),
    "no-main-go": lambda p: "go.mod" in p.names and "main.go" not in p.names,
    "examples": lambda p: not p.top.isdisjoint({"examples", "example"}),
    "docs": lambda p: "docs" in p.top,
}
"""Each fact's name and its test. Chosen and measured on the 5 cross-validation folds
(README, "How good it is"): 63 of the 70 CLIs of the data set show an entry point, a man
page or a CLI library, against 86 of the 482 other projects."""


def shape_facts(paths: Sequence[str], manifests: Mapping[str, str]) -> list[str]:
    """Names of the facts that hold for a project (``paths``: its files; ``manifests``: the
    text of its selected manifests), in FACTS order."""
    lowered = [p.lower() for p in paths]
    text = "\n".join(f"{path}\n{text}" for path, text in manifests.items())
    project = _Project(
        paths=lowered,
        names=frozenset(p.rsplit("/", 1)[-1] for p in lowered),
        top=frozenset(p.split("/", 1)[0] for p in lowered if "/" in p),
        manifests=text,
        words=frozenset(_WORD.findall(text.lower())),
    )
    return [name for name, holds in FACTS.items() if holds(project)]


_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
MAX_NAME_WORDS = 8


def name_words(name: str) -> list[str]:
    """A folder name as lower-case words (``kde-cli-tools``, ``PyQtDarkTheme``: kde cli tools,
    py qt dark theme), at most MAX_NAME_WORDS: names say "cli", "sdk" or "app" often."""
    return [word.lower() for word in _NAME_WORDS.findall(name)][:MAX_NAME_WORDS]
