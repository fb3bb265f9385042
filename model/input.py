"""Project -> model text: the canonical input of the classifier (input format 5).

Training and the daemon both call ``describe``; any change to what it produces must
bump INPUT_FORMAT (bundles record the format they were trained on and the runtime
refuses a mismatch) and update the golden files in tests/.

The text is an indented file tree followed by deterministic facts:

    # tree
    app/
      main.py
      static/ … 40 files: 30 .js, 10 .css
    package.json
    … 12 more: 8 .py, 4 .txt
    # languages: python javascript
    # technologies: django react
    # dependencies
    npm: react react-dom
    pypi: django
    # project: shop api
    # facts: pkg-main docs

The last two lines are the project's folder name as words and its shape facts
(``model.shape``). The tokenizer encodes them as segments of their own, ``[CLS] text
[SEP] project [SEP] facts [SEP]`` (``segments``): the wide path weighs each segment apart,
so a few telling tokens are not lost among thousands of paths.

It fits a token budget. Facts come first in the budget; then tree entries are added
in priority order (manifests and their folders, then shallow before deep, and within a
depth each folder's first entries before any folder's later ones) until the next one
does not fit. Whatever is not shown is summarised in the nearest shown folder by file
count and extension, and ``truncated`` says so. Token counts come from the model's own
tokenizer when one is given (``count_tokens``), else from an estimate.

Names come from outside (any file name, any dependency name in a manifest): control
characters and line separators in them are escaped (a newline as backslash-n), so a
name is always one line and cannot forge ``# languages`` or ``# technologies``. Nothing
here recurses over the tree: any depth of folders is laid out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from treelens.model.detect import detect_languages, detect_technologies
from treelens.model.errors import UsageError
from treelens.model.filters import DEFAULT_FILTER, PathFilter, extension
from treelens.model.manifests import dependencies
from treelens.model.shape import name_words, shape_facts
from treelens.model.tree import ProjectTree

INPUT_FORMAT = 5
DEFAULT_MAX_TOKENS = 4096
MIN_MAX_TOKENS = 256
SPECIAL_TOKENS = 4
"""[CLS] and three [SEP] (one closing each segment): the text gets max_tokens - SPECIAL_TOKENS."""
SEGMENT_HEADS = ("# project:", "# facts:")
"""The heads of the last two lines of a model text, each encoded as a segment of its own."""

INDENT = "  "
MAX_LANGUAGES = 12
DEPENDENCY_SHARE = 0.25
"""At most this share of the budget goes to the dependency section."""

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Counts the tokens of each line (each given with its trailing newline)."""

_PIECES = re.compile(r"[ \t]+|[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^\sA-Za-z\d]")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(name: str) -> str:
    """A name with control characters and line separators escaped as Python writes them
    (newline: backslash-n, ESC: backslash-x1b, U+2028: backslash-u2028): one line of model
    text, and the same text as before for every ordinary name."""
    if name.isprintable():
        return name
    return _CONTROL.sub(_escape, name)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def estimate_tokens(lines: Sequence[str]) -> list[int]:
    """Token estimate without a tokenizer: one per word, number, symbol or blank run."""
    return [len(_PIECES.findall(line)) for line in lines]


GIT_BOOKKEEPING = frozenset({".gitignore", ".gitattributes", ".gitkeep", ".gitmodules"})
"""Files that say nothing about a project: a folder holding only these is empty to the model."""


@dataclass(frozen=True)
class Analysis:
    """Deterministic facts about a project, independent of any model."""

    project_paths: list[str]
    languages: dict[str, int]
    technologies: list[str]
    dependencies: dict[str, list[str]]
    manifests: list[str]
    script_languages: tuple[str, ...] = ()
    """Languages of extension-less scripts by their shebang (the query policy's; never
    in the model text)."""


@dataclass(frozen=True)
class ModelText:
    """The model text of one project and what was left out of it."""

    text: str
    truncated: bool
    token_count: int
    shown_files: int
    total_files: int
    analysis: Analysis = field(repr=False)
    empty: bool = False
    """No file the model can read (an empty folder, or every file ignored or filtered as
    noise): there is nothing to classify, and a label would be a guess."""


def analyze(tree: ProjectTree, path_filter: PathFilter = DEFAULT_FILTER) -> Analysis:
    """Project paths, languages, technologies and dependencies of a tree."""
    project = path_filter.project_paths(tree.paths)
    project_set = set(project)
    manifests = {p: t for p, t in tree.manifests.items() if p in project_set}
    deps = dependencies(manifests)
    return Analysis(
        project_paths=project,
        languages=detect_languages(project),
        technologies=detect_technologies(project, deps),
        dependencies=deps,
        manifests=sorted(manifests),
        script_languages=tuple(sorted({lang for p, lang in tree.scripts.items() if p in project_set})),
    )


def describe(
    tree: ProjectTree,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    count_tokens: TokenCounter | None = None,
    path_filter: PathFilter = DEFAULT_FILTER,
) -> ModelText:
    """The model text of a project, within ``max_tokens`` (special tokens included)."""
    counter = _CachedCounter(count_tokens or estimate_tokens)
    if max_tokens < MIN_MAX_TOKENS:
        raise UsageError(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    budget = max_tokens - SPECIAL_TOKENS
    facts = analyze(tree, path_filter)
    kinds = {f.path: f.kind for f in tree.files}
    signal = path_filter.signal_paths(facts.project_paths)

    fact_lines, facts_truncated = _fact_lines(facts, counter, budget)
    shape = {p: tree.manifests[p] for p in facts.manifests}
    segment_lines = [
        f"{SEGMENT_HEADS[0]} {' '.join(name_words(tree.name)) or 'unknown'}\n",
        f"{SEGMENT_HEADS[1]} {' '.join(shape_facts(facts.project_paths, shape)) or 'none'}\n",
    ]
    tree_budget = budget - counter.total(["# tree\n", *fact_lines, *segment_lines])
    layout = _TreeLayout(signal, kinds, set(facts.manifests), counter)
    layout.fill(tree_budget)
    lines = ["# tree\n", *layout.lines(), *fact_lines, *segment_lines]
    token_count = counter.total(lines)
    if token_count > budget:
        raise ValueError(
            f"model text needs {token_count} tokens, over its budget of {budget}: the "
            "tokenizer must count each line on its own (newline-isolating pre-tokenizer)"
        )
    return ModelText(
        text="".join(lines),
        truncated=facts_truncated or layout.hidden_files > 0,
        token_count=token_count,
        shown_files=len(signal) - layout.hidden_files,
        total_files=len(facts.project_paths),
        analysis=facts,
        empty=all(p.rsplit("/", 1)[-1] in GIT_BOOKKEEPING for p in signal),
    )


def segments(text: str) -> tuple[str, str, str]:
    """A model text's three segments: the text, its project line, its facts line.

    ``describe`` always ends a text with those two lines, and no earlier line can pose as
    them (names are escaped to one line each), so they are found from the end. A text
    without them (hand-made, or of an older format) has empty segments: it is still encoded
    the same way, ``[CLS] text [SEP] [SEP] [SEP]``.
    """
    head, _, facts = text.removesuffix("\n").rpartition("\n")
    main, _, project = head.rpartition("\n")
    if project.startswith(SEGMENT_HEADS[0]) and facts.startswith(SEGMENT_HEADS[1]):
        return (main + "\n" if main else ""), project + "\n", facts + "\n"
    return text, "", ""


def _fact_lines(facts: Analysis, counter: _CachedCounter, budget: int) -> tuple[list[str], bool]:
    """Languages, technologies and dependency lines; the dependency part capped."""
    languages = " ".join(list(facts.languages)[:MAX_LANGUAGES]) or "none"
    lines = [
        f"# languages: {languages}\n",
        f"# technologies: {' '.join(facts.technologies) or 'none'}\n",
    ]
    if not facts.dependencies:
        return [*lines, "# dependencies: none\n"], False
    lines.append("# dependencies\n")
    cap = int(budget * DEPENDENCY_SHARE)
    used, truncated = 0, False
    for ecosystem, listed in facts.dependencies.items():
        names = [printable(name) for name in listed]
        shown = _fit_words(f"{ecosystem}:", names, counter, cap - used)
        if len(shown) < len(names):
            truncated = True
            line = " ".join([f"{ecosystem}:", *shown, f"… {len(names) - len(shown)} more"]) + "\n"
        else:
            line = " ".join([f"{ecosystem}:", *names]) + "\n"
        cost = counter.one(line)
        if used + cost > cap:
            truncated = True
            break
        lines.append(line)
        used += cost
    return lines, truncated


def _fit_words(head: str, words: list[str], counter: _CachedCounter, room: int) -> list[str]:
    """The longest prefix of ``words`` whose line (with a '… N more' tail) fits ``room``."""
    full = " ".join([head, *words]) + "\n"
    if counter.one(full) <= room:
        return words
    low, high = 0, len(words)
    while low < high:  # binary search: counting is monotone in the prefix length
        mid = (low + high + 1) // 2
        line = " ".join([head, *words[:mid], f"… {len(words) - mid} more"]) + "\n"
        if counter.one(line) <= room:
            low = mid
        else:
            high = mid - 1
    return words[:low]


class _CachedCounter:
    """Token counts of lines, memoised: summaries are re-counted many times."""

    def __init__(self, count: TokenCounter) -> None:
        self._count = count
        self._cache: dict[str, int] = {}

    def many(self, lines: Sequence[str]) -> list[int]:
        missing = [line for line in dict.fromkeys(lines) if line not in self._cache]
        if missing:
            self._cache.update(zip(missing, self._count(missing), strict=True))
        return [self._cache[line] for line in lines]

    def one(self, line: str) -> int:
        return self.many([line])[0]

    def total(self, lines: Sequence[str]) -> int:
        return sum(self.many(lines))


def _summary(counts: dict[str, int]) -> str:
    """'40 files: 30 .js, 10 .css' style description of hidden files."""
    total = sum(counts.values())
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:3]
    parts = [f"{n} {printable(ext) or 'other'}" for ext, n in top]
    rest = total - sum(n for _ext, n in top)
    if rest:
        parts.append(f"{rest} other")
    return f"{total} files: {', '.join(parts)}"


def _minus(counts: dict[str, int], taken: dict[str, int]) -> dict[str, int]:
    """``counts`` without ``taken``, zero entries dropped."""
    left = dict(counts)
    for ext, n in taken.items():
        remaining = left[ext] - n
        if remaining:
            left[ext] = remaining
        else:
            del left[ext]
    return left


class _Dir:
    """A folder of the tree: its children and, once shown, what it still hides."""

    __slots__ = ("cost", "counts", "depth", "dirs", "files", "hidden", "name", "path", "shown")

    def __init__(self, path: str, depth: int) -> None:
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.depth = depth
        self.dirs: dict[str, _Dir] = {}
        self.files: list[str] = []
        self.counts: dict[str, int] = {}  # extensions of every file below
        self.hidden: dict[str, int] = {}  # of those, the ones not shown (once shown itself)
        self.shown: list[_Dir | str] = []
        self.cost = 0  # tokens of its own line and trailer, once shown


class _TreeLayout:
    """Chooses which entries of a tree are shown within a token budget."""

    def __init__(
        self,
        paths: list[str],
        kinds: dict[str, str],
        manifests: set[str],
        counter: _CachedCounter,
    ) -> None:
        self.kinds = kinds
        self.counter = counter
        self.root = _Dir("", -1)
        self._nodes = {"": self.root}
        self._listing: dict[str, list[_Dir | str]] = {}
        for path in paths:
            folder, _, _name = path.rpartition("/")
            self._folder(folder).files.append(path)
        self._count(self.root)
        shown_manifests = manifests.intersection(paths)
        self.forced = {p for m in shown_manifests for p in _ancestors_and_self(m)}
        self.root.hidden = dict(self.root.counts)
        self.root.cost = self._node_cost(self.root, self.root.hidden, shown=False)
        self.cost = self.root.cost  # tokens of everything shown so far

    def _folder(self, path: str) -> _Dir:
        """The node of a folder, created with the folders above it that are missing."""
        missing = []
        while path not in self._nodes:
            missing.append(path)
            path = path.rpartition("/")[0]
        node = self._nodes[path]
        for inner in reversed(missing):
            child = _Dir(inner, inner.count("/"))
            node.dirs[inner.rpartition("/")[2]] = child
            self._nodes[inner] = child
            node = child
        return node

    def _count(self, root: _Dir) -> None:
        """Fill ``counts`` bottom-up: each file is counted once, in its own folder."""
        order, stack = [], [root]
        while stack:  # folders before the folders inside them
            node = stack.pop()
            order.append(node)
            stack.extend(node.dirs.values())
        for node in reversed(order):  # so every folder after the folders inside it
            counts: dict[str, int] = {}
            for path in node.files:
                ext = extension(path)
                counts[ext] = counts.get(ext, 0) + 1
            for child in node.dirs.values():
                for ext, n in child.counts.items():
                    counts[ext] = counts.get(ext, 0) + n
            node.counts = counts

    @property
    def hidden_files(self) -> int:
        return sum(sum(d.hidden.values()) for d in self._shown_dirs())

    def _children(self, node: _Dir) -> list[_Dir | str]:
        """A folder's entries in listing order: folders, then files, each sorted (memoised)."""
        children = self._listing.get(node.path)
        if children is None:
            children = [*(node.dirs[n] for n in sorted(node.dirs)), *sorted(node.files)]
            self._listing[node.path] = children
        return children

    def _offers(self) -> Iterator[tuple[_Dir | str, _Dir]]:
        """Entries with their parents in the order they are offered to the budget.

        The order is (forced first, depth, rank among its folder's entries, path):
        manifests and their folders, then level by level, each folder's first entry
        before any folder's second. It is produced lazily, level by level and rank by
        rank, because filling usually stops long before the deep levels of a large tree.
        """
        forced = []
        for parent in self._nodes.values():
            for rank, child in enumerate(self._children(parent)):
                path = child.path if isinstance(child, _Dir) else child
                if path in self.forced:
                    forced.append(((path.count("/"), rank, path), child, parent))
        forced.sort(key=lambda item: item[0])
        yield from ((child, parent) for _key, child, parent in forced)

        parents = [self.root]
        while parents:
            listings = [(parent, self._children(parent)) for parent in parents]
            widest = max(len(children) for _parent, children in listings)
            for rank in range(widest):
                offers = [
                    (child.path if isinstance(child, _Dir) else child, child, parent)
                    for parent, children in listings
                    if rank < len(children)
                    for child in (children[rank],)
                ]
                offers.sort(key=lambda item: item[0])
                yield from ((child, parent) for path, child, parent in offers if path not in self.forced)
            parents = [
                child for _parent, children in listings for child in children if isinstance(child, _Dir)
            ]

    def fill(self, budget: int) -> None:
        """Show everything when it fits; else entries in priority order until one does not."""
        if self._fits_whole(budget):
            return
        for child, parent in self._offers():
            if isinstance(child, _Dir):
                taken = child.counts
                child_cost = self._node_cost(child, child.counts, shown=False)
            else:
                taken = {extension(child): 1}
                child_cost = self.counter.one(self._file_line(child))
            hidden = _minus(parent.hidden, taken)
            parent_cost = self._node_cost(parent, hidden, shown=True)
            if self.cost + parent_cost + child_cost - parent.cost > budget:
                break
            self.cost += parent_cost + child_cost - parent.cost
            parent.hidden, parent.cost = hidden, parent_cost
            parent.shown.append(child)
            if isinstance(child, _Dir):
                child.hidden, child.cost = dict(child.counts), child_cost

    def _fits_whole(self, budget: int) -> bool:
        """Show every entry at once when the complete listing fits (the common case)."""
        if 2 * len(self._nodes) + sum(len(n.files) for n in self._nodes.values()) > 2 * budget:
            return False  # every line costs at least a name and a newline
        for node in self._nodes.values():
            node.shown = self._children(node)
            node.hidden = {}
        cost = self.counter.total(self.lines())
        if cost <= budget:
            self.cost = cost
            return True
        for node in self._nodes.values():
            node.shown = []
        self.root.hidden = dict(self.root.counts)
        self.cost = self.root.cost
        return False

    # lines ------------------------------------------------------------------------------

    def _dir_line(self, node: _Dir, hidden: dict[str, int], shown: bool) -> str:
        indent = INDENT * node.depth
        name = printable(node.name)
        if shown or not hidden:
            return f"{indent}{name}/\n"
        return f"{indent}{name}/ … {_summary(hidden)}\n"

    def _file_line(self, path: str) -> str:
        name = printable(path.rsplit("/", 1)[-1])
        kind = self.kinds.get(path, "file")
        suffix = "@" if kind == "link" else "/ (submodule)" if kind == "submodule" else ""
        return f"{INDENT * path.count('/')}{name}{suffix}\n"

    def _trailer_line(self, node: _Dir, hidden: dict[str, int], shown: bool) -> str | None:
        """The '… N more' line closing a shown folder that still hides files.

        A folder none of whose entries are shown carries its summary on its own line
        instead; the root has no line of its own, so it always uses a trailer.
        """
        if not hidden or (node is not self.root and not shown):
            return None
        more = _summary(hidden).replace(" files:", " more:", 1)
        return f"{INDENT * (node.depth + 1)}… {more}\n"

    def _node_cost(self, node: _Dir, hidden: dict[str, int], shown: bool) -> int:
        """Tokens of a shown folder's own line plus its trailer (the root has no line)."""
        lines = [] if node is self.root else [self._dir_line(node, hidden, shown)]
        trailer = self._trailer_line(node, hidden, shown)
        if trailer:
            lines.append(trailer)
        return self.counter.total(lines)

    def _shown_dirs(self) -> list[_Dir]:
        found, stack = [], [self.root]
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(c for c in node.shown if isinstance(c, _Dir))
        return found

    def lines(self) -> list[str]:
        """The shown tree as text lines, folders before files, each level sorted: each
        folder's line, then its contents, then its files and its trailer."""
        out: list[str] = []
        pending: list[_Dir | str] = [self.root]  # a folder to lay out, or a line to write
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            dirs = sorted((c for c in item.shown if isinstance(c, _Dir)), key=lambda d: d.name)
            closing = [self._file_line(path) for path in sorted(c for c in item.shown if isinstance(c, str))]
            trailer = self._trailer_line(item, item.hidden, bool(item.shown))
            if trailer:
                closing.append(trailer)
            pending.extend(reversed(closing))
            for child in reversed(dirs):
                pending.append(child)
                pending.append(self._dir_line(child, child.hidden, bool(child.shown)))
        return out


def _ancestors_and_self(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
