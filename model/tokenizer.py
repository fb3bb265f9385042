"""The model's tokenizer at run time: loading ``tokenizer.json`` and counting tokens per line.

The tokenizer is a byte-level BPE trained by ``treelens-train tokenizer``. Its
pre-tokenizer isolates every newline, so no token ever spans two lines and the token
count of a model text is exactly the sum of its lines' counts: that is what lets
``model.input.describe`` fit a text to the budget line by line with the real tokenizer.
Only the ``tokenizers`` library is needed here (no torch, no transformers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from treelens.model.errors import TreelensError
from treelens.model.input import TokenCounter, segments
from treelens.model.lru import LRUCache

CLS, PAD, SEP, UNK, MASK = "[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"
SPECIAL_TOKENS: tuple[str, ...] = (CLS, PAD, SEP, UNK, MASK)
"""In id order (0..4), the RoBERTa layout Longformer expects: [CLS] doubles as BOS and
[SEP] as EOS; [PAD] is id 1 so position ids start at 2 as in RoBERTa."""

PROBE_LINES = ("src/main.py\n", "  components/Button.tsx\n", "npm: react react-dom\n")
COUNTER_CACHE_SIZE = 1 << 16


class TokenizerError(TreelensError, ValueError):
    """A tokenizer file that cannot serve as the model's tokenizer."""


def load_tokenizer(path: Path | str) -> Tokenizer:
    """Load ``tokenizer.json`` and check it has our special tokens and newline isolation.

    Special tokens written in a text (a file named ``[SEP]``) are encoded as plain text:
    only ``encode`` places [CLS] and [SEP], so a name cannot add a segment.
    """
    path = Path(path)
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust side raises plain Exception subclasses
        raise TokenizerError(f"{path}: not a tokenizers file ({error})") from None
    tokenizer.encode_special_tokens = True
    check_tokenizer(tokenizer, str(path))
    return tokenizer


def check_tokenizer(tokenizer: Tokenizer, where: str) -> None:
    """Raise TokenizerError unless ids 0..4 are our special tokens and line counts add up."""
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != expected_id:
            raise TokenizerError(
                f"{where}: special token {token} must have id {expected_id}, "
                f"has {tokenizer.token_to_id(token)}; retrain with `treelens-train tokenizer`"
            )
    counts = [len(e.ids) for e in tokenizer.encode_batch(list(PROBE_LINES), add_special_tokens=False)]
    whole = len(tokenizer.encode("".join(PROBE_LINES), add_special_tokens=False).ids)
    if whole != sum(counts):
        raise TokenizerError(
            f"{where}: token counts are not additive over lines ({whole} != {sum(counts)}): "
            "its pre-tokenizer must isolate newlines; retrain with `treelens-train tokenizer`"
        )


def encode(tokenizer: Tokenizer, text: str, max_tokens: int) -> list[int]:
    """``[CLS] text [SEP] project [SEP] facts [SEP]`` token ids of a model text (its
    ``segments``), at most ``max_tokens`` of them (cut by ``fit_segments``)."""
    return encode_batch(tokenizer, [text], max_tokens)[0]


def encode_batch(tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """``encode`` of many texts in one call (the tokenizer encodes them in parallel)."""
    cls_id, sep_id = tokenizer.token_to_id(CLS), tokenizer.token_to_id(SEP)
    pieces = [piece for text in texts for piece in segments(text)]
    encoded = [e.ids for e in tokenizer.encode_batch(pieces, add_special_tokens=False)]
    return [fit_segments(encoded[i : i + 3], max_tokens, cls_id, sep_id) for i in range(0, len(encoded), 3)]


def fit_segments(parts: Sequence[list[int]], max_tokens: int, cls_id: int, sep_id: int) -> list[int]:
    """The ids of a text's three segments (``cut_segments``), each closed by [SEP], behind
    [CLS]: at most ``max_tokens``."""
    ids = [cls_id]
    for segment in cut_segments(parts, max_tokens):
        ids += [*segment, sep_id]
    return ids


def cut_segments(parts: Sequence[list[int]], max_tokens: int) -> list[list[int]]:
    """The token ids of a text's three segments, cut so that with [CLS] and three [SEP] they
    take at most ``max_tokens``; each kept part is a prefix of its segment.

    The one cutting rule of training, the export's parity check, the runtime and its
    tokenization view. A text that ``model.input.describe`` fitted with this tokenizer and
    budget always fits (its budget counts the special tokens); a foreign or hand-made one is
    cut: each short segment to an eighth of the budget, the text to what is left, so the
    model only ever sees three closed segments.
    """
    text, *short = parts
    short = [ids[: max_tokens // 8] for ids in short]
    room = max_tokens - 1 - len(short) - 1 - sum(len(ids) for ids in short)
    return [text[:room], *short]


def fit_ids(ids: list[int], max_tokens: int, sep_id: int) -> list[int]:
    """``ids`` cut to ``max_tokens``, keeping a closing [SEP]: for checks that need a valid
    input of a given length (the export's parity samples), not for model texts."""
    return ids if len(ids) <= max_tokens else [*ids[: max_tokens - 1], sep_id]


class LineCounter:
    """Tokens per line with the model's tokenizer, memoised (a TokenCounter).

    The daemon re-describes a project after every file change; most lines repeat, so a
    bounded cache turns a re-describe into dictionary look-ups.
    """

    def __init__(self, tokenizer: Tokenizer, cache_size: int = COUNTER_CACHE_SIZE) -> None:
        self.tokenizer = tokenizer
        self._cache: LRUCache[str, int] = LRUCache(cache_size)

    def __call__(self, lines: Sequence[str]) -> list[int]:
        counts = {line: self._cache.get(line) for line in dict.fromkeys(lines)}
        missing = [line for line, count in counts.items() if count is None]
        if missing:  # one batch for every new line; a call may hold more lines than the cache
            encoded = self.tokenizer.encode_batch(missing, add_special_tokens=False)
            for line, encoding in zip(missing, encoded, strict=True):
                counts[line] = len(encoding.ids)
                self._cache.put(line, counts[line])
        return [counts[line] for line in lines]


def line_counter(tokenizer: Tokenizer) -> TokenCounter:
    """A new memoised TokenCounter for ``model.input.describe``, owned by the caller.

    No module-level registry: one keyed by tokenizer kept every tokenizer ever loaded
    alive, about 2 MB per model reload in a long-running daemon.
    """
    return LineCounter(tokenizer)
