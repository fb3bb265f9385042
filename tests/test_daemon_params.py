"""A tree a client sends as text (treelens/classifyTree) is read exactly as the CLI's
``--tree-file`` reads it: one path reader (model/listing.py) for both."""

from __future__ import annotations

import pytest

from treelens.daemon import params
from treelens.daemon.protocol import InvalidParams
from treelens.model.listing import parse_listing

GIT_LS_FILES = 'README.md\n"caf\\303\\251.py"\n"tab\\there.go"\nsrc/main.go\n'
TREE_DRAWING = """\
.
├── go.mod
├── cmd
│   └── tool
│       └── main.go
└── docs
    └── guide.md

3 directories, 3 files
"""


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        (GIT_LS_FILES, ["README.md", "café.py", "tab\there.go", "src/main.go"]),
        (TREE_DRAWING, ["go.mod", "cmd/tool/main.go", "docs/guide.md"]),
        ("./a.py\r\n/b/c.py\r\nfolder/\n..\n", ["a.py", "b/c.py"]),
    ],
    ids=["git ls-files, C-quoted", "tree drawing", "clean-up"],
)
def test_a_client_listing_reads_as_the_clis(text: str, paths: list[str]) -> None:
    assert parse_listing(text) == paths
    assert params.tree({"tree": text}).paths == sorted(paths)  # a tree keeps its paths sorted


def test_a_listing_without_paths_is_invalid_params() -> None:
    with pytest.raises(InvalidParams, match="no file paths"):
        params.tree({"tree": ".\n\n0 directories, 0 files\n"})


def test_a_list_of_paths_is_cleaned_the_same_way() -> None:
    assert params.tree({"tree": ["./a.py", "/b/c.py", "folder/", "..", ""]}).paths == ["a.py", "b/c.py"]
