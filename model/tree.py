"""ProjectTree: the one shape every project takes before it becomes model text.

A scanned folder, a data-set record and a client-built path list all become a
ProjectTree (paths relative to the project root with '/' separators, sizes, kinds, and
the text of the selected manifests), so the model text function has one input type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

FILE_KINDS = ("file", "link", "submodule")


class FileEntry(NamedTuple):
    """One tracked file: path relative to the root, size in bytes, and its kind.

    A NamedTuple rather than a dataclass: scans create one per file, 100,000 at a time.
    """

    path: str
    size: int = 0
    kind: str = "file"


@dataclass
class ProjectTree:
    """Files of a project (sorted by path) and the text of its selected manifests."""

    files: list[FileEntry]
    manifests: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, str] = field(default_factory=dict)
    """Extension-less scripts and the language their shebang names (``mvnw``: bash), read by
    the scanner. Not part of the model text (data-set records carry no file contents): the
    query policy uses it, as semgrep reads shebangs to pick a script's rules."""
    name: str = ""
    """The project's folder name (a data-set record: the repository's name), "" when not
    known. Part of the model text: names say "cli", "sdk" or "app" often."""

    def __post_init__(self) -> None:
        self.files = sorted(self.files, key=lambda f: f.path)

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @classmethod
    def from_paths(cls, paths: list[str], name: str = "") -> ProjectTree:
        """A tree from bare paths (a client-built tree: no sizes, no manifest text)."""
        return cls([FileEntry(p) for p in dict.fromkeys(paths)], name=name)

    @classmethod
    def from_record(cls, record: Any, where: str = "record") -> ProjectTree:
        """A tree from a data-set record (``files``, ``manifests``, optional ``name``), validated.

        Raises ValueError naming ``where`` and the problem, so a bad line in a data
        file is found without guessing.
        """
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        if "files" not in record:
            raise ValueError(f"{where}: missing key 'files'")
        files = record["files"]
        if not isinstance(files, list):
            raise ValueError(f"{where}: 'files' must be a list of [path, size, kind]")
        entries = []
        for i, item in enumerate(files):
            if (
                not isinstance(item, list | tuple)
                or len(item) != 3
                or not isinstance(item[0], str)
                or not isinstance(item[1], int)
                or item[2] not in FILE_KINDS
            ):
                raise ValueError(
                    f"{where}: files[{i}] must be [path, size_bytes, 'file'|'link'|'submodule'], "
                    f"got {item!r:.120}"
                )
            entries.append(FileEntry(item[0], item[1], item[2]))
        manifests = record.get("manifests", {})
        if not isinstance(manifests, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in manifests.items()
        ):
            raise ValueError(f"{where}: 'manifests' must map paths to text")
        name = record.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"{where}: 'name' must be a string (the project's folder name)")
        return cls(entries, dict(manifests), name=name)

    def to_record(self) -> dict[str, Any]:
        """The data-set form of this tree (``files``, ``manifests``, ``name`` when known)."""
        record: dict[str, Any] = {
            "files": [[f.path, f.size, f.kind] for f in self.files],
            "manifests": dict(sorted(self.manifests.items())),
        }
        if self.name:
            record["name"] = self.name
        return record
