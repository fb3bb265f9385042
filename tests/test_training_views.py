"""Per-epoch augmented views (``epoch_views``), which pretraining and finetuning share."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from tests.test_training_units import monorepo
from treelens.model.errors import UsageError
from treelens.model.tokenizer import encode_batch, line_counter
from treelens.model.tree import FileEntry, ProjectTree
from treelens.training.stage_configs import FinetuneConfig, PretrainConfig
from treelens.training.texts import epoch_views, render


def small_app() -> ProjectTree:
    files = [FileEntry(f"src/page{i}.py") for i in range(40)] + [FileEntry("pyproject.toml")]
    return ProjectTree(files, {"pyproject.toml": '[project]\nname = "app"\n'}, name="app")


def test_views_drop_files_and_repeat_per_seed(tiny_run: Path):
    tokenizer = Tokenizer.from_file(str(tiny_run / "tokenizer" / "tokenizer.json"))
    counter = line_counter(tokenizer)
    trees = [monorepo(), small_app()] * 4
    ids = encode_batch(tokenizer, render(trees, 512, counter), 512)

    config = PretrainConfig(augment_drop=0.5, augment_drop_share=0.5)
    views = epoch_views(trees, ids, config, 3, tokenizer, 512, counter)
    assert views == epoch_views(trees, ids, config, 3, tokenizer, 512, counter)  # a resumed run
    changed = [i for i, (a, b) in enumerate(zip(views, ids, strict=True)) if a != b]
    assert 0 < len(changed) < len(trees)
    assert epoch_views(trees, ids, config, 4, tokenizer, 512, counter) != views  # the next epoch
    off = PretrainConfig(augment_drop=0.0)
    assert epoch_views(trees, ids, off, 3, tokenizer, 512, counter) == ids
    for i in changed:  # a view is the same project with fewer files, never an empty text
        assert 0 < len(tokenizer.decode(views[i])) < len(tokenizer.decode(ids[i]))
        assert "pyproject" in tokenizer.decode(views[i]) or "package" in tokenizer.decode(views[i])


def flask_app() -> ProjectTree:
    """600 files in 20 packages: more than 512 tokens, so a smaller budget summarises it."""
    files = [FileEntry(f"pkg{j}/module_{i}.py") for j in range(20) for i in range(30)]
    files.append(FileEntry("pyproject.toml"))
    manifest = '[project]\nname = "app"\ndependencies = ["flask"]\n'
    return ProjectTree(files, {"pyproject.toml": manifest}, name="app")


def test_views_drop_the_manifests_text_or_cut_the_budget(tiny_run: Path):
    """--augment-deps-drop shows a project without its dependency section and manifest
    facts (the files stay listed); --augment-budget cuts a view to 512-2,048 tokens, so a
    large tree is summarised. Both off: a view that drops no file is the text itself."""
    tokenizer = Tokenizer.from_file(str(tiny_run / "tokenizer" / "tokenizer.json"))
    counter = line_counter(tokenizer)
    trees = [flask_app()] * 6
    ids = encode_batch(tokenizer, render(trees, 4096, counter), 4096)
    every = {"augment_drop": 1.0, "augment_drop_share": 0.0}
    assert epoch_views(trees, ids, PretrainConfig(**every), 0, tokenizer, 4096, counter) == ids

    config = PretrainConfig(**every, augment_deps_drop=1.0)
    no_deps = epoch_views(trees, ids, config, 0, tokenizer, 4096, counter)
    full = tokenizer.decode(ids[0])
    assert "flask" in full and "py-pkg-meta" in full
    for view in map(tokenizer.decode, no_deps):
        assert "flask" not in view and "py-pkg-meta" not in view and "pyproject" in view

    cut = epoch_views(trees, ids, PretrainConfig(**every, augment_budget=1.0), 0, tokenizer, 4096, counter)
    assert len(ids[0]) > 2048
    assert all(len(view) <= 2048 for view in cut) and len({len(view) for view in cut}) > 1
    assert all("flask" in tokenizer.decode(view) for view in cut)


def test_view_settings_are_chances():
    for name in ("augment_drop", "augment_drop_share", "augment_deps_drop", "augment_budget"):
        flag = "--" + name.replace("_", "-")
        with pytest.raises(UsageError, match=re.escape(f"{flag} must be between 0 and 1, got 1.5")):
            PretrainConfig(**{name: 1.5}).validate()
        with pytest.raises(UsageError, match=re.escape("between 0 and 1, got -0.1")):
            FinetuneConfig(**{name: -0.1}).validate()
