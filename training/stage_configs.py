"""The settings of every training stage: one dataclass each, fields with defaults and help.

Kept apart from the stages so that ``treelens-train --help`` and argument errors answer
without importing torch. training/options.py turns these into flags and reads presets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from treelens.model.bundle import DEFAULT_BUNDLE_DIR
from treelens.model.devices import DEFAULT_DEVICE, DEVICES
from treelens.model.errors import UsageError
from treelens.model.input import DEFAULT_MAX_TOKENS
from treelens.model.labels import LABELS
from treelens.training.options import DEFAULT_DATA_DIR, option

SPLIT_CHOICES = ["test", "validation", "train", "all"]

SUMMARY_DIMENSIONS = 64
"""How many truncated-SVD dimensions the summary loss predicts by default (training/summary.py)."""


def check_augmentation(config: PretrainConfig | FinetuneConfig) -> None:
    """The view settings are chances and shares: each between 0 and 1."""
    for name in ("augment_drop", "augment_drop_share", "augment_deps_drop", "augment_budget"):
        value = getattr(config, name)
        if not 0 <= value <= 1:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")


def check_probe(config: FinetuneConfig) -> None:
    """A probe pooling (``probe``, ``probe-cls``) trains no Longformer weights: options that
    shape that training are refused rather than silently ignored."""
    for name, unset in (("distill_weight", 0.0), ("head_epochs", 0), ("encoder_learning_rate", None)):
        if getattr(config, name) != unset:
            raise UsageError(
                f"--{name.replace('_', '-')} shapes the Longformer's training, which --pooling probe does "
                "not do (it fits a logistic regression on the frozen pretrained states); leave it out"
            )


TRAIN_DATA_HELP = (
    "labelled records that only ever train, never validate or test, so every score stays on --data's "
    "records: `treelens-train data build`'s output for training/annotations.jsonl (README)"
)
"""--train-data's help: pretrain (the trees only), finetune, evaluate (its baselines), all and crossval
read it."""


LABEL_WIDE_WEIGHT_HELP = (
    "LABEL=WEIGHT, the wide path's weight for that label's logits instead of --wide-weight "
    "(cli=0.5: where the Longformer alone reads a label better than the wide path); one or more, "
    "or the flag alone for none (it clears the preset's)"
)


def parse_label_weights(items: Sequence[str]) -> dict[str, float]:
    """``["cli=0.5"]`` -> ``{"cli": 0.5}``, or a UsageError naming the bad item."""
    weights = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if name not in LABELS or not 0 <= weight <= 1:
            raise UsageError(
                f"--label-wide-weight {item!r}: expected LABEL=WEIGHT with a label of "
                f"{', '.join(LABELS)} and a weight from 0 to 1 (cli=0.5)"
            )
        weights[name] = weight
    return weights


@dataclass
class TokenizerConfig:
    output_dir: Path = option(Path("runs/tokenizer"), "folder for tokenizer.json")
    overwrite_output_dir: bool = option(False, "write into a non-empty --output-dir")
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir)")
    vocab_size: int = option(8000, "vocabulary size, special tokens included")
    min_frequency: int = option(2, "a merge must occur this often")
    max_tokens: int = option(DEFAULT_MAX_TOKENS, "model-text budget the texts are rendered with")
    subtrees: bool = option(True, "also train on sub-trees of large repositories")
    max_train_samples: int | None = option(None, "use at most this many records (smoke runs)")
    seed: int = option(0, "unused by BPE (deterministic); kept for a uniform CLI")

    def validate(self) -> None:
        if self.vocab_size < 300:
            raise UsageError(
                f"--vocab-size must be at least 300 (256 bytes + specials), got {self.vocab_size}"
            )


@dataclass
class PretrainConfig:
    # I/O
    output_dir: Path = option(Path("runs/pretrain"), "folder for checkpoints and the pretrained model")
    overwrite_output_dir: bool = option(False, "start over in a non-empty --output-dir (else resume)")
    tokenizer: Path = option(Path("runs/tokenizer/tokenizer.json"), "tokenizer.json from the tokenizer stage")
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir)")
    train_data: list[Path] = option([], TRAIN_DATA_HELP)
    # data
    subtrees: bool = option(True, "add sub-trees of large repositories as extra samples")
    augment_drop: float = option(0.5, "chance a training text is shown with some files dropped, per epoch")
    augment_drop_share: float = option(0.25, "share of non-manifest files dropped then")
    augment_deps_drop: float = option(
        0.0, "chance such a view also loses its manifests' text (dependency section, manifest facts)"
    )
    augment_budget: float = option(
        0.0, "chance such a view is cut to a smaller token budget (512, 1,024 or 2,048: folders summarised)"
    )
    summary_weight: float = option(
        0.0,
        "weight of a second loss beside the masked tokens: the mean of each segment's states also "
        "predicts the text's TF-IDF summary (--summary-dimensions SVD dimensions; training/summary.py); "
        "0: off",
    )
    summary_dimensions: int = option(
        SUMMARY_DIMENSIONS, "how many truncated-SVD dimensions of the text's TF-IDF the summary loss predicts"
    )
    summary_cls: bool = option(
        False,
        "[CLS] attends globally (as in the classifier) and the summary also reads its state: trains the "
        "global projections a --pooling probe-cls head reads; needs --summary-weight",
    )
    max_train_samples: int | None = option(None, "use at most this many training texts (smoke runs)")
    max_eval_samples: int | None = option(None, "use at most this many evaluation texts")
    # model
    layers: int = option(4, "transformer layers")
    hidden: int = option(256, "hidden size")
    heads: int = option(4, "attention heads")
    intermediate: int = option(1024, "feed-forward size")
    attention_window: int = option(128, "Longformer local attention window (tokens, both sides)")
    max_tokens: int = option(DEFAULT_MAX_TOKENS, "longest input, special tokens included")
    dropout: float = option(0.1, "hidden and attention dropout")
    # optimizer and schedule
    epochs: int = option(20, "passes over the training texts")
    batch_size: int = option(8, "texts per micro-batch (per process)")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    learning_rate: float = option(5e-4, "peak AdamW learning rate")
    weight_decay: float = option(0.01, "AdamW weight decay of matrices")
    warmup_ratio: float = option(0.06, "share of steps with linear warm-up")
    max_grad_norm: float = option(1.0, "gradient clipping norm")
    mlm_probability_start: float = option(0.38, "masking probability of the first epoch")
    mlm_probability_end: float = option(0.08, "masking probability of the last epoch")
    max_steps: int | None = option(None, "stop after this many optimizer steps (smoke runs)")
    # logging, checkpoints, system
    log_steps: int = option(10, "log loss and tokens/s every N steps")
    checkpoint_steps: int = option(50, "evaluate and checkpoint every N steps")
    device: str = option(DEFAULT_DEVICE, ", ".join(DEVICES), choices=list(DEVICES))
    threads: int | None = option(None, "torch CPU threads (default: torch's choice)")
    seed: int = option(0, "random seed")

    def validate(self) -> None:
        check_augmentation(self)
        if not 0 < self.mlm_probability_end <= self.mlm_probability_start < 1:
            raise UsageError("need 0 < --mlm-probability-end <= --mlm-probability-start < 1")
        if self.hidden % self.heads:
            raise UsageError(f"--hidden {self.hidden} must be a multiple of --heads {self.heads}")
        if self.summary_weight < 0:
            raise UsageError(f"--summary-weight must be at least 0, got {self.summary_weight}")
        if self.summary_dimensions < 1:
            raise UsageError(f"--summary-dimensions must be at least 1, got {self.summary_dimensions}")
        if self.summary_cls and self.summary_weight == 0:
            raise UsageError("--summary-cls needs --summary-weight above 0: it trains [CLS] by that loss")


SEGMENT_POOLINGS = ("segments", "segments-below")
"""The poolings whose head reads the segment means (training/pooling.py ``SegmentHead``)."""
PROBE = "probe"
"""The pooling whose head is a linear probe fit on the frozen pretrained states (training/probe.py)."""
PROBE_CLS = "probe-cls"
"""The same probe reading the last layer's [CLS] state beside the segment means."""
PROBES = (PROBE, PROBE_CLS)
"""The poolings fit as a linear probe (no epochs)."""
POOLINGS = ("cls", *SEGMENT_POOLINGS, *PROBES)
"""What the classifier head reads (training/pooling.py); chosen by ``finetune --pooling``."""


@dataclass
class FinetuneConfig:
    # I/O
    output_dir: Path = option(Path("runs/finetune"), "folder for checkpoints and the classifier")
    overwrite_output_dir: bool = option(False, "start over in a non-empty --output-dir (else resume)")
    pretrained: Path = option(Path("runs/pretrain"), "output folder of the pretrain stage")
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir); labelled records are used")
    train_data: list[Path] = option([], TRAIN_DATA_HELP)
    max_train_samples: int | None = option(None, "use at most this many training records (smoke runs)")
    max_eval_samples: int | None = option(None, "use at most this many validation records")
    # the report's epoch rule: max_epochs for small data sets, min_epochs for large ones
    max_epochs: int = option(40, "epochs when the training set has at most --min-size records")
    min_epochs: int = option(4, "epochs when it has at least --max-size records")
    min_size: int = option(1_000, "training-set size up to which max_epochs apply")
    max_size: int = option(1_000_000, "training-set size from which min_epochs apply")
    early_stopping_patience: int = option(
        8, "stop after this many epochs without a better validation macro-F1"
    )
    overfit_ratio: float = option(5.0, "warn when validation loss exceeds this multiple of training loss")
    # optimizer
    batch_size: int = option(8, "records per micro-batch (per process)")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    learning_rate: float = option(2e-4, "peak AdamW learning rate")
    encoder_learning_rate: float | None = option(
        None,
        "peak learning rate of the pretrained Longformer's weights, the head keeping --learning-rate: "
        "lower finetunes it gently (with --head-epochs: LP-FT); default: --learning-rate",
    )
    weight_decay: float = option(0.01, "AdamW weight decay of matrices")
    warmup_ratio: float = option(0.1, "share of steps with linear warm-up")
    max_grad_norm: float = option(1.0, "gradient clipping norm")
    pos_weight: bool = option(True, "weight positives of rare labels up (negatives/positives, capped at 5)")
    global_init: str = option(
        "local",
        "how the global ([CLS]) attention starts: 'local' copies the pretrained local projections, "
        "'mean' also zeroes its query (uniform attention: mean pooling at first), 'random' as pretrained",
        choices=["local", "mean", "random"],
    )
    wide_weight: float = option(
        0.0,
        "weight of the wide path (logistic regression on token counts, in the same graph) in the "
        "mixed logits; 0: the Longformer alone",
    )
    label_wide_weight: list[str] = option([], LABEL_WIDE_WEIGHT_HELP, nargs="*")
    pooling: str = option(
        "cls",
        "what the head reads: 'cls' the [CLS] state alone, 'segments' also the mean of each segment's "
        "last hidden states (tree, project, facts; training/pooling.py), 'segments-below' those of the "
        "layer below the last (the export then runs the last layer for [CLS] alone: faster), 'probe' a "
        "logistic regression on the frozen pretrained model's last-layer segment means (no epochs: the "
        "Longformer is not trained, the optimizer and augmentation options do not apply; training/probe.py), "
        "'probe-cls' that probe reading the last layer's [CLS] state too",
        choices=list(POOLINGS),
    )
    distill_weight: float = option(
        0.0,
        "share of each training target taken from the wide path's out-of-fold probabilities "
        "(knowledge distillation); 0: the labels alone",
    )
    summary_weight: float = option(
        0.0,
        "weight of a second loss: the pooled features also predict the text's TF-IDF summary "
        "(64 SVD dimensions; training/summary.py); needs a segments pooling; 0: off",
    )
    augment_drop: float = option(0.5, "chance a training record is shown with some files dropped, per epoch")
    augment_drop_share: float = option(0.25, "share of non-manifest files dropped then")
    augment_deps_drop: float = option(
        0.0, "chance such a view also loses its manifests' text (dependency section, manifest facts)"
    )
    augment_budget: float = option(
        0.0, "chance such a view is cut to a smaller token budget (512, 1,024 or 2,048: folders summarised)"
    )
    head_epochs: int = option(
        0,
        "first train the head alone for this many epochs, the pretrained Longformer frozen, then "
        "finetune the whole model (LP-FT: a fitted head moves the pretrained states less; early "
        "stopping waits for the whole model's epochs); 0: off",
    )
    # system
    device: str = option(DEFAULT_DEVICE, ", ".join(DEVICES), choices=list(DEVICES))
    threads: int | None = option(None, "torch CPU threads (default: torch's choice)")
    seed: int = option(0, "random seed")

    def validate(self) -> None:
        check_augmentation(self)
        if self.encoder_learning_rate is not None and self.encoder_learning_rate <= 0:
            raise UsageError(f"--encoder-learning-rate must be above 0, got {self.encoder_learning_rate}")
        if self.head_epochs < 0:
            raise UsageError(f"--head-epochs must be at least 0, got {self.head_epochs}")
        if self.summary_weight < 0:
            raise UsageError(f"--summary-weight must be at least 0, got {self.summary_weight}")
        if self.summary_weight > 0 and self.pooling not in SEGMENT_POOLINGS:
            raise UsageError(
                "--summary-weight needs --pooling segments or segments-below (it trains that head's features)"
            )
        if not 0 <= self.wide_weight < 1:
            raise UsageError(f"--wide-weight must be at least 0 and below 1, got {self.wide_weight}")
        if self.label_wide_weight and self.wide_weight == 0:
            raise UsageError(
                "--label-wide-weight needs a wide path: pass --wide-weight above 0 too, or "
                "--label-wide-weight alone to clear the preset's"
            )
        parse_label_weights(self.label_wide_weight)
        if self.pooling in PROBES:
            check_probe(self)
        if not 0 <= self.distill_weight <= 1:
            raise UsageError(f"--distill-weight must be between 0 and 1, got {self.distill_weight}")
        if self.min_epochs > self.max_epochs or self.min_size >= self.max_size:
            raise UsageError("need --min-epochs <= --max-epochs and --min-size < --max-size")

    def epochs_for(self, size: int) -> int:
        """max_epochs -> min_epochs linearly between min_size and max_size records."""
        share = min(max((size - self.min_size) / (self.max_size - self.min_size), 0.0), 1.0)
        return round(self.max_epochs + share * (self.min_epochs - self.max_epochs))


@dataclass
class EvaluateConfig:
    output_dir: Path = option(Path("runs/evaluate"), "folder for metrics.json, report.md, confusion.png")
    overwrite_output_dir: bool = option(False, "write into a non-empty --output-dir")
    model: Path | None = option(None, "output folder of the finetune stage (PyTorch)")
    bundle: Path | None = option(None, "an exported model bundle (ONNX Runtime); instead of --model")
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir)")
    train_data: list[Path] = option([], TRAIN_DATA_HELP)
    split: str = option("test", "which labelled records to score ('all': every one)", choices=SPLIT_CHOICES)
    baselines: bool = option(True, "also score the rules and TF-IDF baselines (fit on the train split)")
    max_train_samples: int | None = option(None, "fit the TF-IDF baseline on at most this many records")
    max_eval_samples: int | None = option(None, "score at most this many records")
    batch_size: int = option(8, "texts per forward pass of a PyTorch --model (a --bundle runs one by one)")
    device: str = option(DEFAULT_DEVICE, ", ".join(DEVICES), choices=list(DEVICES))
    threads: int | None = option(None, "CPU threads")
    seed: int = option(0, "random seed of the TF-IDF baseline")

    def validate(self) -> None:
        if (self.model is None) == (self.bundle is None):
            raise UsageError("give exactly one of --model (finetune output) or --bundle (exported bundle)")


@dataclass
class ExportConfig:
    output_dir: Path = option(Path("runs/export"), "folder for bundle/ (--precision) and bundle-fp32/")
    overwrite_output_dir: bool = option(False, "write into a non-empty --output-dir")
    model: Path = option(Path("runs/finetune"), "output folder of the finetune stage")
    metrics: Path | None = option(None, "metrics.json of the evaluate stage, recorded in the manifest")
    data_dir: Path = option(
        DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz); validation texts check parity"
    )
    data: list[Path] = option([], "data files (override --data-dir)")
    buckets: list[int] = option([512, 1024, 2048, 4096], "lengths the runtime pads to; each is checked")
    max_parity_samples: int = option(64, "validation texts checked per bucket")
    precision: str = option(
        "int8",
        "what bundle/ holds (and --install installs): 'int8' dynamic quantization of the MatMul weights "
        "(checked within 0.01 of PyTorch) or 'fp32' the graph as exported (within 1e-4)",
        choices=["int8", "fp32"],
    )
    max_eval_samples: int | None = option(None, "alias of --max-parity-samples for smoke runs")
    name: str = option("treelens-longformer", "model name in the manifest")
    version: str | None = option(None, "model version (default: date and graph hash)")
    install: bool = option(
        False,
        f"also install bundle/ to {DEFAULT_BUNDLE_DIR}, unless it scores lower macro-F1 than "
        "the installed one on the test split",
    )
    install_dir: Path = option(DEFAULT_BUNDLE_DIR, "where --install puts the bundle")
    force: bool = option(False, "with --install: install even when the installed bundle scores higher")
    threads: int | None = option(None, "torch and onnxruntime CPU threads")
    seed: int = option(0, "unused (export is deterministic); kept for a uniform CLI")


@dataclass
class AllConfig:
    output_dir: Path = option(Path("runs/default"), "root folder of the run (one sub-folder per stage)")
    overwrite_output_dir: bool = option(False, "start every stage over (else continue a killed run)")
    pretrained: Path | None = option(
        None,
        "a finished pretrain stage's output folder (made elsewhere, e.g. on a GPU: its model/ and "
        "tokenizer.json) to finetune instead of running the tokenizer and pretrain stages",
    )
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir)")
    train_data: list[Path] = option([], TRAIN_DATA_HELP)
    install: bool = option(
        False,
        "install the bundle to --install-dir at the end, unless it scores lower macro-F1 than "
        "the installed one on the test split",
    )
    install_dir: Path = option(DEFAULT_BUNDLE_DIR, "where --install puts the bundle")
    force: bool = option(False, "with --install: install even when the installed bundle scores higher")
    device: str = option(DEFAULT_DEVICE, ", ".join(DEVICES), choices=list(DEVICES))
    threads: int | None = option(None, "torch / onnxruntime CPU threads")
    seed: int = option(0, "random seed of every stage")


@dataclass
class CrossvalConfig:
    output_dir: Path = option(Path("runs/crossval"), "folder for crossval.json, crossval.md and fold-K/")
    overwrite_output_dir: bool = option(False, "start over in a non-empty --output-dir (else continue)")
    pretrained: Path = option(
        Path("runs/default/pretrain"),
        "output folder of the pretrain stage (--skip-model reads only its tokenizer.json: a bundle "
        "folder such as model/assets/default serves)",
    )
    data_dir: Path = option(DEFAULT_DATA_DIR, "folder with projects-*.jsonl(.gz) data files")
    data: list[Path] = option([], "data files (override --data-dir); labelled records are used")
    train_data: list[Path] = option([], TRAIN_DATA_HELP)
    folds: int = option(5, "number of folds")
    repeats: int = option(
        1,
        "split the records N times (split R with seed --seed + R, for its folds and every system), "
        "scoring all N x --folds folds together: one split's mean can sit 0.01 from another's (README)",
    )
    validation_share: float = option(
        0.15, "share of each fold's training records held out to pick the Longformer's epoch (and thresholds)"
    )
    train_share: float = option(
        1.0,
        "fit every system on this share of each fold's training and validation records, drawn at "
        "random (the test folds stay whole): run it at 0.25, 0.5 and 0.75 for a learning curve, "
        "what more labelled data would be worth (README)",
    )
    wide_weight: float | None = option(
        None,
        "weight of the wide path's logits in wide+deep (0: deep only); default: the preset's "
        "finetune --wide-weight, the mix the bundle ships",
    )
    label_wide_weight: list[str] | None = option(
        None, LABEL_WIDE_WEIGHT_HELP + "; default: the preset's finetune --label-wide-weight", nargs="*"
    )
    skip_model: bool = option(False, "score the baselines and the wide path only (no finetuning)")
    probe: bool = option(
        False,
        "score the pretrained Longformer by a linear probe on its frozen segment means instead of the "
        "preset's finetune on every fold: minutes, to judge a pretraining under a preset that trains "
        "the Longformer (the default preset's finetune is that probe already; README)",
    )
    fold: int | None = option(
        None,
        "finetune and save fold K's Longformer only (0 to --folds x --repeats - 1), then stop: folds run "
        "side by side on a GPU this way; a run without --fold then keeps them and scores every system",
    )
    device: str = option(DEFAULT_DEVICE, ", ".join(DEVICES), choices=list(DEVICES))
    threads: int | None = option(None, "torch CPU threads")
    seed: int = option(0, "random seed of the folds and of every system")

    def validate(self) -> None:
        if self.repeats < 1:
            raise UsageError(f"--repeats must be at least 1, got {self.repeats}")
        last = self.folds * self.repeats - 1
        if self.fold is not None and not 0 <= self.fold <= last:
            raise UsageError(f"--fold must be between 0 and {last} (--folds x --repeats - 1): {self.fold}")
        if self.fold is not None and (self.probe or self.skip_model):
            raise UsageError("--fold finetunes one fold's Longformer; --probe and --skip-model finetune none")
        if self.folds < 2:
            raise UsageError(f"--folds must be at least 2, got {self.folds}")
        if not 0 < self.validation_share < 0.5:
            raise UsageError(f"--validation-share must be between 0 and 0.5, got {self.validation_share}")
        if not 0 < self.train_share <= 1:
            raise UsageError(f"--train-share must be above 0 and at most 1, got {self.train_share}")
        if self.wide_weight is not None and not 0 <= self.wide_weight <= 1:
            raise UsageError(f"--wide-weight must be between 0 and 1, got {self.wide_weight}")
        parse_label_weights(self.label_wide_weight or [])
        if self.probe and self.skip_model:
            raise UsageError("--probe scores the pretrained model and --skip-model leaves it out: pass one")
