"""`treelens-train tokenizer`: a byte-level BPE trained on model texts.

The pre-tokenizer is what makes the model text budget work: it isolates every "\\n"
(so token counts add up line by line, see model/tokenizer.py) and cuts paths where
people read them: at '/', '.', '_', '-', camelCase humps, digit runs and indentation
runs. A word may carry one leading space, so dependency lines ("npm: react react-dom")
stay short. Byte-level BPE then learns the frequent names (``package``, ``src``,
`` react``) as single tokens.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from treelens.model.tokenizer import CLS, SEP, SPECIAL_TOKENS, UNK, check_tokenizer
from treelens.training.options import prepare_output_dir, to_json
from treelens.training.run_layout import TOKENIZER_FILE, save_hf_files
from treelens.training.stage_configs import TokenizerConfig
from treelens.training.texts import SubtreeRule, load_records, pretraining_trees, render

log = logging.getLogger(__name__)

PIECES = r" {2,}| ?[A-Z]?[a-z]+| ?[A-Z]+(?![a-z])| ?\d+| ?[^\sA-Za-z\d]|\s"
"""Indentation runs, words (camelCase humps), acronyms, numbers, single symbols.

model.input's token estimator (``_PIECES``, used when no tokenizer exists yet: this stage's
own texts, ``treelens tree`` without a bundle) counts roughly these pieces; it is an
approximation of this tokenizer, not a copy, and part of the golden model texts, so the
two are kept apart on purpose."""


def new_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE with the path-aware, newline-isolating pre-tokenizer."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Split(Regex(PIECES), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_tokenizer(texts: list[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    """Train the BPE on ``texts`` and add the [CLS] ... [SEP] post-processor."""
    tokenizer = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    cls_id, sep_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B {SEP}",
        special_tokens=[(CLS, cls_id), (SEP, sep_id)],
    )
    check_tokenizer(tokenizer, "trained tokenizer")
    return tokenizer


def run(config: TokenizerConfig) -> Path:
    """Render the texts with the estimator, train, save; returns the tokenizer.json path."""
    prepare_output_dir(config.output_dir, config.overwrite_output_dir)
    records = load_records(config.data, config.data_dir)[: config.max_train_samples]
    trees = pretraining_trees(records, SubtreeRule() if config.subtrees else None)
    log.info(
        "tokenizer: %d records, %d texts (budget %d), vocab %d",
        len(records),
        len(trees),
        config.max_tokens,
        config.vocab_size,
    )
    start = time.perf_counter()
    texts = render(trees, config.max_tokens, counter=None)
    tokenizer = train_tokenizer(texts, config.vocab_size, config.min_frequency)
    path = config.output_dir / TOKENIZER_FILE
    tokenizer.save(str(path))
    save_hf_files(config.output_dir, config.max_tokens)
    summary = {
        "config": to_json(config),
        "records": len(records),
        "texts": len(texts),
        "vocabSize": tokenizer.get_vocab_size(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (config.output_dir / "tokenizer_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("tokenizer: %d tokens -> %s", tokenizer.get_vocab_size(), path)
    return path
