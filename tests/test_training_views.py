"""Per-epoch augmented views (``epoch_views``), which pretraining and finetuning share."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from tests.test_training_units import monorepo
from treelens.model.tokenizer import encode_batch, line_counter
from treelens.model.tree import FileEntry, ProjectTree
from treelens.training.stage_configs import PretrainConfig
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
