"""Shape facts and name words (model/shape.py): what the model text's facts line says, on
hand-made manifests and on real projects of ../shared/data."""

from __future__ import annotations

import pytest

from tests.shared_data import record
from treelens.model.dataset import parse_record
from treelens.model.input import describe, segments
from treelens.model.shape import name_words, shape_facts
from treelens.model.tree import FileEntry, ProjectTree


@pytest.mark.parametrize(
    ("paths", "manifests", "expected"),
    [
        (
            ["package.json", "cli.js"],
            {"package.json": '{"bin": {"x": "cli.js"}, "dependencies": {"yargs": "1"}}'},
            ["pkg-bin", "cli-deps"],
        ),
        (
            ["pyproject.toml", "src/x/__main__.py"],
            {"pyproject.toml": "[project]\nname='x'\n[project.scripts]\nx='x:main'"},
            ["py-scripts", "py-pkg-meta"],
        ),
        (
            ["Cargo.toml", "src/lib.rs", "examples/a.rs"],
            {"Cargo.toml": "[package]\nname='x'\n[lib]\n"},
            ["cargo-lib", "examples"],
        ),
        (["go.mod", "cmd/x/main.go", ".goreleaser.yml"], {"go.mod": "module x"}, ["go-cmd", "goreleaser"]),
        (
            ["App.csproj", "MainWindow.xaml"],
            {"App.csproj": "<OutputType>WinExe</OutputType><UseWPF>true</UseWPF>"},
            ["desktop-files", "winexe"],
        ),
        (["README.md"], {}, []),
    ],
)
def test_facts_of_hand_made_projects(paths, manifests, expected):
    assert shape_facts(paths, manifests) == expected


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Cargo.toml", '[package]\nname = "x"\ncategories = ["command-line-utilities", "text-processing"]\n'),
        ("package.json", '{"name": "x", "keywords": [\n  "json",\n  "CLI"\n]}'),
        ("pyproject.toml", '[project]\nname = "x"\nclassifiers = [\n  "Environment :: Console",\n]\n'),
        ("setup.cfg", "[metadata]\nclassifiers =\n    Topic :: Utilities\n    Environment :: Console\n"),
        ("setup.cfg", "[metadata]\nkeywords = terminal, colors\n"),
        ("composer.json", '{"name": "x/y", "keywords": ["framework", "cli"]}'),
        ("X.csproj", "<Project><PropertyGroup><PackageTags>http;cli</PackageTags></PropertyGroup></Project>"),
    ],
)
def test_a_manifest_that_lists_itself_as_a_command_line_program_declares_cli(name, text):
    assert "declared-cli" in shape_facts([name], {name: text})


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("package.json", '{"description": "a web console in your terminal", "keywords": ["web", "admin"]}'),
        ("package.json", '{"name": "x-cli", "bin": {"x": "cli.js"}, "keywords": ["cli-tool"]}'),
        ("Cargo.toml", '[package]\nname = "x"\nkeywords = ["parser"]\ndescription = "A CLI parser"\n'),
        ("setup.cfg", "[metadata]\ndescription = console helpers\nkeywords = logging\n"),
    ],
)
def test_descriptions_names_and_other_keywords_do_not_declare_cli(name, text):
    assert "declared-cli" not in shape_facts([name], {name: text})


@pytest.mark.parametrize(
    ("record_id", "present", "absent"),
    [
        ("24seconds/rust-cli-pomodoro", {"cargo-bin"}, {"gui-deps"}),
        ("5yutan5/PyQtDarkTheme", {"gui-deps"}, {"cargo-bin", "pkg-bin"}),
        ("sharkdp/hyperfine", {"declared-cli", "cargo-bin"}, set()),
        ("tiangolo/typer-cli", {"declared-cli"}, set()),
        ("18F/identity-oidc-sinatra", set(), {"declared-cli"}),
    ],
)
def test_facts_line_of_real_projects(record_id, present, absent):
    text = describe(parse_record(record(record_id), record_id).tree).text
    facts = set(segments(text)[2].split()[2:])
    assert present <= facts and not absent & facts


def test_name_words():
    assert name_words("kde-cli-tools") == ["kde", "cli", "tools"]
    assert name_words("PyQtDarkTheme") == ["py", "qt", "dark", "theme"]
    assert name_words("HTTPServer2") == ["http", "server", "2"]
    assert name_words("a-b-c-d-e-f-g-h-i-j") == list("abcdefgh")  # at most eight
    assert name_words("") == [] and name_words("---") == []


def test_project_and_facts_lines_cannot_be_forged_by_file_names():
    """The segments are the text's last two lines; files named like them stay in the tree."""
    files = [FileEntry("# project: evil cli"), FileEntry("# facts: pkg-bin"), FileEntry("main.py")]
    text = describe(ProjectTree(files, name="my-web-app")).text
    main, project, facts = segments(text)
    assert main + project + facts == text
    assert project == "# project: my web app\n" and facts == "# facts: none\n"
    assert "# project: evil cli\n" in main and "# facts: pkg-bin\n" in main


def test_a_text_without_segment_lines_is_one_segment():
    assert segments("# tree\nmain.py\n") == ("# tree\nmain.py\n", "", "")
    assert segments("") == ("", "", "")
