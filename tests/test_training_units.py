"""The small pure pieces of training: sub-trees, augmentation, metrics, thresholds, rules,
the epoch and masking schedules, length batching."""

from __future__ import annotations

import random

import numpy as np
import pytest

from treelens.model.input import analyze
from treelens.model.labels import LABELS
from treelens.model.tree import FileEntry, ProjectTree
from treelens.training.baselines import rules_labels
from treelens.training.metrics import multilabel_metrics, tune_thresholds
from treelens.training.modeling import RunContext, length_batches
from treelens.training.stage_configs import FinetuneConfig, PretrainConfig
from treelens.training.texts import SubtreeRule, drop_files, subtrees


def monorepo() -> ProjectTree:
    files = [FileEntry(f"packages/web/src/c{i}.tsx") for i in range(30)]
    files += [FileEntry("packages/web/package.json"), FileEntry("packages/tiny/package.json")]
    files += [FileEntry(f"services/api/app/m{i}.py") for i in range(25)] + [
        FileEntry("services/api/pyproject.toml")
    ]
    files += [FileEntry(f"docs/page{i}.md") for i in range(200)] + [FileEntry("package.json")]
    manifests = {"packages/web/package.json": '{"dependencies": {"react": "1"}}', "package.json": "{}"}
    return ProjectTree(files, manifests, name="mono")


def test_subtrees_are_the_packages_of_a_monorepo():
    found = subtrees(monorepo(), SubtreeRule())
    assert [sorted(t.paths)[0] for t in found] == ["package.json", "app/m0.py"]
    web = found[0]
    assert "src/c0.tsx" in web.paths and web.manifests == {"package.json": '{"dependencies": {"react": "1"}}'}
    assert [t.name for t in found] == ["web", "api"]  # each package is named for its folder
    assert subtrees(monorepo(), SubtreeRule(min_repo_files=10_000)) == []
    assert len(subtrees(monorepo(), SubtreeRule(max_per_repo=1))) == 1


def test_drop_files_keeps_manifests():
    tree = monorepo()
    dropped = drop_files(tree, 0.5, random.Random(1))
    assert set(tree.manifests) == set(dropped.manifests) and dropped.name == tree.name
    assert {p for p in tree.paths if p.endswith(("package.json", "pyproject.toml"))} <= set(dropped.paths)
    assert 0.3 * len(tree.paths) < len(dropped.paths) < 0.8 * len(tree.paths)


def test_drop_files_keeps_the_scripts_of_the_files_it_keeps():
    files = [FileEntry(f"bin/tool{i}") for i in range(40)]
    tree = ProjectTree(files, {}, {f"bin/tool{i}": "bash" for i in range(40)}, name="tools")
    dropped = drop_files(tree, 0.5, random.Random(1))
    assert 0 < len(dropped.scripts) < 40 and set(dropped.scripts) == set(dropped.paths)


def test_metrics_by_hand():
    y = np.array([[1, 0, 0, 0, 0, 0, 0, 1], [1, 1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]])
    p = np.array([[1, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 1, 0]])
    m = multilabel_metrics(y, p)
    backend = {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2, "accuracy": 0.6667}
    assert m["labels"]["backend"] == {**backend, "confusion": [[1, 0], [1, 1]]}
    assert m["labels"]["library"]["precision"] == 0.0 and m["labels"]["library"]["support"] == 0
    assert m["exact_match"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1), abs=1e-4)
    assert m["label_accuracy"] == pytest.approx(22 / 24, abs=1e-4)


def test_thresholds_tuned_per_label():
    y = np.zeros((6, len(LABELS)), dtype=int)
    y[:3, 0] = 1
    probs = np.full((6, len(LABELS)), 0.1)
    probs[:, 0] = [0.35, 0.3, 0.32, 0.2, 0.1, 0.05]  # backend separates at 0.3
    thresholds = tune_thresholds(y, probs)
    assert thresholds["backend"] == 0.25  # the middle of the gap that separates them
    assert thresholds["cli"] == 0.5  # no positives: left alone


def test_a_threshold_below_every_probability_stays_above_zero():
    """Every project positive, one at 1e-9: the best cut lies under 0.0001, which rounding to
    4 decimals would turn into 0, a threshold no bundle accepts."""
    y = np.ones((3, len(LABELS)), dtype=int)
    probs = np.tile([[1e-9], [0.4], [0.6]], (1, len(LABELS)))
    thresholds = tune_thresholds(y, probs)
    assert all(0 < t <= 1e-9 for t in thresholds.values())


def test_thresholds_reach_the_best_f1_scikit_learn_finds():
    """The counting shortcut gives every label the F1 a threshold sweep scored by
    scikit-learn finds best, ties in probability included."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (80, len(LABELS)))
    probs = np.round(np.clip(y * 0.3 + rng.random(y.shape) * 0.7, 0, 1), 2)  # many ties
    thresholds = tune_thresholds(y, probs)
    for i, name in enumerate(LABELS):
        best = max(f1_score(y[:, i], probs[:, i] >= t) for t in np.unique(probs[:, i]))
        assert f1_score(y[:, i], probs[:, i] >= thresholds[name]) == pytest.approx(best)


def test_rules_baseline_reads_the_evidence():
    django = ProjectTree(
        [FileEntry(p) for p in ("manage.py", "shop/views.py", "api/urls.py", "requirements.txt")],
        {"requirements.txt": "django\ndjangorestframework\n"},
    )
    found = dict(zip(LABELS, rules_labels(analyze(django)), strict=True))
    assert found["backend"] == 1 and found["has_api"] == 1 and found["mobile"] == 0 and found["library"] == 0
    terraform = ProjectTree([FileEntry("main.tf"), FileEntry("variables.tf")])
    assert dict(zip(LABELS, rules_labels(analyze(terraform)), strict=True))["iac"] == 1


def test_schedules():
    config = PretrainConfig(epochs=11)
    from treelens.training.pretrain import mlm_probability

    assert mlm_probability(config, 0) == pytest.approx(0.38)
    assert mlm_probability(config, 5) == pytest.approx(0.23)
    assert mlm_probability(config, 10) == pytest.approx(0.08)
    finetune = FinetuneConfig(max_epochs=40, min_epochs=4, min_size=1_000, max_size=1_000_000)
    assert finetune.epochs_for(200) == 40 and finetune.epochs_for(5_000_000) == 4
    assert finetune.epochs_for(500_500) == 22


def test_length_batches_group_lengths_and_split_ranks():
    lengths = [random.Random(i).randint(10, 4000) for i in range(100)]
    one = RunContext(device=None, dtype=None, rank=0, world_size=1, local_rank=0)  # type: ignore[arg-type]
    batches = length_batches(lengths, 8, seed=0, epoch=0, ctx=one)
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert batches == length_batches(lengths, 8, seed=0, epoch=0, ctx=one)
    assert batches != length_batches(lengths, 8, seed=0, epoch=1, ctx=one)
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 1000  # similar lengths share a batch
    ranks = [length_batches(lengths, 8, 0, 0, RunContext(None, None, r, 2, r)) for r in (0, 1)]  # type: ignore[arg-type]
    assert len(ranks[0]) == len(ranks[1]) == 7  # 13 batches, padded to 14 by repeating one
    assert {i for r in ranks for b in r for i in b} == set(range(100))
    few = [length_batches([5, 6, 7], 8, 0, 0, RunContext(None, None, r, 2, r)) for r in (0, 1)]  # type: ignore[arg-type]
    assert few[0] == few[1] == [[0, 1, 2]]  # one batch: both ranks run it, neither waits forever


FOUR_PROJECTS_LABELS = np.array(
    [[1, 0, 1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0, 1, 1]]
)
"""Labels of four toy projects, each label held by two: every label has both classes to fit."""


def test_wide_head_computes_the_wide_path_per_segment(tiny_run):
    """The graph's WideHead gives the logits of the scikit-learn WidePath it was made from,
    segment by segment: a fact that moves from the text into the facts segment changes them."""
    from treelens.model.tokenizer import encode_batch, load_tokenizer
    from treelens.training import wide

    tokenizer = load_tokenizer(tiny_run / "tokenizer" / "tokenizer.json")
    texts = [
        f"# tree\n{name}/main.py\n# project: {project}\n# facts: {facts}\n"
        for name, project, facts in [
            ("cmd", "tool cli", "pkg-bin cli-deps"),
            ("web", "shop", "pkg-private"),
            ("lib", "sdk", "pkg-main docs"),
            ("app", "desk app", "gui-deps desktop-files"),
        ]
    ]
    ids = encode_batch(tokenizer, texts, 256)
    path = wide.WidePath(tokenizer).fit(ids, FOUR_PROJECTS_LABELS)
    head = wide.WideHead(**path.weights())
    np.testing.assert_allclose(wide.head_logits(head, ids), path.logits(ids), atol=1e-4)
    moved = encode_batch(
        tokenizer, ["# tree\ncmd/main.py\npkg-bin cli-deps\n# project: tool cli\n# facts: none\n"], 256
    )
    assert not np.allclose(wide.head_logits(head, moved), wide.head_logits(head, ids[:1]), atol=1e-3)


def test_wide_path_weighs_tokens_by_how_they_tell_a_label_apart(tiny_run):
    """NB-LR: a token only a label's projects hold gets a positive log-count ratio, one only
    the others hold a negative one, one every project holds none; the fit folds the ratios
    into its coefficients, so the token no project tells apart weighs nothing."""
    from treelens.model.tokenizer import encode_batch, load_tokenizer
    from treelens.training import wide

    tokenizer = load_tokenizer(tiny_run / "tokenizer" / "tokenizer.json")
    texts = [f"# tree\nsrc/{name}\n# project: x\n# facts: none\n" for name in ("cmd", "cmd", "web", "web")]
    ids = encode_batch(tokenizer, texts, 256)
    path = wide.WidePath(tokenizer)
    x = path.features(ids)
    ratios = path.log_count_ratios(x, np.array([True, True, False, False]))
    only_cli = set(x[0].indices) - set(x[2].indices)
    only_web = set(x[2].indices) - set(x[0].indices)
    shared = set(x[0].indices) & set(x[2].indices)
    assert only_cli and only_web and shared
    assert all(ratios[i] > 1 for i in only_cli) and all(ratios[i] < -1 for i in only_web)
    assert all(abs(ratios[i]) < 1e-6 for i in shared)
    path.fit(ids, np.array([[1, 0], [1, 0], [0, 1], [0, 1]]))
    assert all(path.coef[0, i] == 0 for i in shared) and all(path.coef[0, i] > 0 for i in only_cli)


def test_a_label_wide_weight_mixes_that_label_alone(tiny_run, tmp_path):
    """--label-wide-weight cli=0.2: cli's logits mix at 0.2, every other label's at the
    default, the same in numpy (finetune, evaluate) and in the exported torch graph; the
    weights survive saving, and a wide.npz with one weight loads as that weight per label."""
    import torch

    from treelens.model.tokenizer import PAD, encode_batch, load_tokenizer
    from treelens.training import wide

    weights = wide.label_weights(0.9, {"cli": 0.2})
    cli = LABELS.index("cli")
    assert weights[cli] == pytest.approx(0.2) and np.delete(weights, cli) == pytest.approx(0.9)
    mixed = wide.mix_logits(np.zeros((2, len(LABELS))), np.ones((2, len(LABELS))), weights)
    assert mixed[:, cli] == pytest.approx(0.2) and np.delete(mixed, cli, axis=1) == pytest.approx(0.9)

    tokenizer = load_tokenizer(tiny_run / "tokenizer" / "tokenizer.json")
    texts = [
        f"# tree\n{name}/main.py\n# project: {name}\n# facts: none\n" for name in ("cmd", "web", "lib", "app")
    ]
    ids = encode_batch(tokenizer, texts, 256)
    path = wide.WidePath(tokenizer).fit(ids, FOUR_PROJECTS_LABELS)
    wide.save(tmp_path, path, weights)
    head, loaded = wide.load(tmp_path)
    assert loaded == pytest.approx(weights)

    class Deep(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return torch.zeros(input_ids.shape[0], len(LABELS))

    longest = max(map(len, ids))
    tensor = torch.tensor([row + [tokenizer.token_to_id(PAD)] * (longest - len(row)) for row in ids])
    mask = torch.tensor([[1] * len(row) + [0] * (longest - len(row)) for row in ids])
    got = wide.WideAndDeep(Deep(), head, loaded)(tensor, mask).detach().numpy()
    expected = wide.mix_logits(np.zeros_like(got), wide.head_logits(head, ids), weights)
    np.testing.assert_allclose(got, expected, atol=1e-5)

    np.savez(tmp_path / wide.WIDE_FILE, **path.weights(), wide_weight=np.float32(0.9))
    assert wide.load(tmp_path)[1] == pytest.approx([0.9] * len(LABELS))


def test_an_older_runs_tfidf_wide_path_is_refused_with_what_to_do(tmp_path):
    """A wide.npz from before NB-LR (idf, no ``counted``) cannot be exported as this graph."""
    from treelens.training import wide
    from treelens.training.options import StageError

    np.savez(tmp_path / wide.WIDE_FILE, idf=np.ones((3, 4)), coef=np.zeros((8, 12)), wide_weight=0.9)
    with pytest.raises(StageError, match="finetune again"):
        wide.load(tmp_path)


def test_wide_path_out_of_fold_logits_then_a_fit_on_all(tiny_run):
    """fit_out_of_fold: each record's logits come from an inner fit that never saw it; the
    path it leaves behind (the one finetune ships) is fit on every record."""
    from treelens.model.tokenizer import encode_batch, load_tokenizer
    from treelens.training import wide
    from treelens.training.metrics import inner_folds

    tokenizer = load_tokenizer(tiny_run / "tokenizer" / "tokenizer.json")
    texts = [
        f"# tree\n{name}/main.py\n# project: {name}\n# facts: none\n"
        for name in ("cmd", "web", "lib", "app", "api", "bin")
    ]
    ids = encode_batch(tokenizer, texts, 256)
    y = np.array([[1, 0] * 4, [0, 1] * 4, [1, 1, 0, 0] * 2, [0, 0, 1, 1] * 2, [1, 0] * 4, [0, 1] * 4])
    path = wide.WidePath(tokenizer)
    oof = path.fit_out_of_fold(ids, y, folds=3)
    for fit_on, score in inner_folds(len(ids), 3, seed=0):
        inner = wide.WidePath(tokenizer).fit([ids[i] for i in fit_on], y[fit_on])
        np.testing.assert_allclose(oof[score], inner.logits([ids[i] for i in score]), rtol=1e-5, atol=1e-5)
    assert not np.allclose(oof, path.logits(ids), atol=1e-3)
    np.testing.assert_allclose(path.logits(ids), wide.WidePath(tokenizer).fit(ids, y).logits(ids))


def test_crossvals_mix_takes_thresholds_from_its_own_out_of_fold_probabilities():
    """With the probe's out-of-fold probabilities (model/oof) the mix is tuned on the mix of
    both paths' (a label at its own weight needs its own threshold); a finetuned Longformer
    has none, and the mix takes the wide path's."""
    from treelens.training import crossval, wide

    rng = np.random.default_rng(0)
    probs = {key: rng.uniform(0.01, 0.99, size=(6, len(LABELS))) for key in ("model/test", "wide/test")}
    probs |= {key: rng.uniform(0.01, 0.99, size=(20, len(LABELS))) for key in ("model/oof", "wide/oof")}
    weights = wide.label_weights(0.9, {"cli": 0.5})
    mixed = crossval.with_mix(probs, weights)
    expected = wide.mix(wide.to_logits(probs["model/oof"]), wide.to_logits(probs["wide/oof"]), weights)
    np.testing.assert_allclose(mixed["wide+deep/oof"], expected, rtol=1e-6)
    finetuned = crossval.with_mix({k: v for k, v in probs.items() if k != "model/oof"}, weights)
    assert finetuned["wide+deep/oof"] is probs["wide/oof"]
