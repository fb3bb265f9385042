"""The classifier's pooling: what the head reads from the Longformer's last layer.

``cls`` is stock ``LongformerForSequenceClassification``: the head reads [CLS] alone, which
sees the text through its global attention. ``segments`` also reads the mean of each
segment's last hidden states (the model text is ``[CLS] tree [SEP] project [SEP] facts
[SEP]``, ``model.input.segments``): through [CLS] alone the few tokens of the project name
and the facts compete with thousands of path tokens for one attention, while a mean per
segment keeps each in view, as the wide path weighs each segment apart.
``segments-below`` takes those means from the layer below the last: the last layer is then
needed for [CLS] alone, so the export graph computes that layer for one token, as it does
for ``cls``. ``probe`` reads the last layer's segment means alone, through one linear layer
fit as a logistic regression on the frozen pretrained model (training/probe.py);
``probe-cls`` reads the last layer's [CLS] state beside them. The choice
is stored in the model's config (``treelens_pooling``), so every loader gets the head the
model was trained with (``load_classifier``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import LongformerConfig, LongformerForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from treelens.model.input import SEGMENT_HEADS
from treelens.training.stage_configs import PROBE_CLS, PROBES
from treelens.training.wide import segment_ids

SEGMENTS = len(SEGMENT_HEADS) + 1  # the tree, then one segment per head line (project, facts)
CONFIG_KEY = "treelens_pooling"


def pooling_of(config: LongformerConfig) -> str:
    """The pooling a saved model was trained with (models without the key: ``cls``)."""
    return getattr(config, CONFIG_KEY, "cls")


def cls_global_mask(input_ids: torch.Tensor) -> torch.Tensor:
    """Longformer's global attention mask as the classifier runs it: [CLS] (position 0)
    attends globally, every other token locally."""
    mask = torch.zeros_like(input_ids)
    mask[:, 0] = 1
    return mask


def segment_means(
    hidden: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, sep_id: int
) -> torch.Tensor:
    """The mean of each segment's hidden states (padding left out), side by side:
    batch x (SEGMENTS * hidden). One matmul of the segments' one-hot weights with the states:
    a masked sum per segment took 7 % of the exported graph's time at 4,096 tokens."""
    segment = segment_ids(input_ids, sep_id, SEGMENTS)
    kinds = torch.arange(SEGMENTS, device=input_ids.device)
    weight = ((segment[:, None, :] == kinds[None, :, None]) & (attention_mask[:, None, :] > 0)).to(
        hidden.dtype
    )
    means = torch.matmul(weight, hidden) / weight.sum(dim=-1, keepdim=True).clamp(min=1.0)
    return means.flatten(start_dim=1)


class SegmentHead(nn.Module):
    """[CLS] beside the mean of each segment's hidden states -> dense -> tanh -> labels
    (the stock head's shape, on ``SEGMENTS + 1`` times the width)."""

    def __init__(self, config: LongformerConfig) -> None:
        super().__init__()
        self.sep_id = config.sep_token_id
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.dense = nn.Linear((SEGMENTS + 1) * config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def features(
        self, cls: torch.Tensor, states: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The pooled features the labels are read from (after dense and tanh): the [CLS]
        state beside the segment means of ``states`` (the last layer's or the one below)."""
        parts = [cls, segment_means(states, input_ids, attention_mask, self.sep_id)]
        return torch.tanh(self.dense(self.dropout(torch.cat(parts, dim=-1))))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(features))


class ProbeHead(nn.Module):
    """The mean of each segment's last hidden states (``probe-cls``: beside the last [CLS]
    state) -> labels: one linear layer, whose weights ``probe.fit_head`` sets from a logistic
    regression on standardised features."""

    def __init__(self, config: LongformerConfig) -> None:
        super().__init__()
        self.sep_id = config.sep_token_id
        self.reads_cls = pooling_of(config) == PROBE_CLS
        self.out_proj = nn.Linear((SEGMENTS + self.reads_cls) * config.hidden_size, config.num_labels)

    def features(
        self, cls: torch.Tensor, states: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """The segment means of ``states``, then [CLS] for ``probe-cls`` (``probe`` reads [CLS]
        through the tree segment's mean alone)."""
        means = segment_means(states, input_ids, attention_mask, self.sep_id)
        return torch.cat([means, cls], dim=-1) if self.reads_cls else means

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out_proj(features)


class SegmentPooledClassifier(LongformerForSequenceClassification):
    """LongformerForSequenceClassification whose head reads every segment (``SegmentHead``,
    or ``ProbeHead`` for a probe).

    [CLS] keeps its global attention; loss and labels are the trainer's business (finetune
    computes BCE itself), so ``forward`` returns the logits and, as its one hidden state,
    the head's pooled features (``finetune --summary-weight`` trains them too).
    """

    def __init__(self, config: LongformerConfig) -> None:
        super().__init__(config)
        self.classifier = ProbeHead(config) if pooling_of(config) in PROBES else SegmentHead(config)
        self.post_init()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: object
    ) -> SequenceClassifierOutput:
        below = pooling_of(self.config) == "segments-below"
        output = self.longformer(
            input_ids=input_ids,
            attention_mask=attention_mask,
            global_attention_mask=cls_global_mask(input_ids),
            output_hidden_states=below,
        )
        hidden = output.last_hidden_state
        states = output.hidden_states[-2] if below else hidden
        features = self.classifier.features(hidden[:, 0], states, input_ids, attention_mask)
        return SequenceClassifierOutput(logits=self.classifier(features), hidden_states=(features,))


def classifier_class(pooling: str) -> type[LongformerForSequenceClassification]:
    return LongformerForSequenceClassification if pooling == "cls" else SegmentPooledClassifier


def new_classifier(pretrained: Path, pooling: str, **config: object) -> LongformerForSequenceClassification:
    """A classifier with a fresh head on the pretrained (MLM) Longformer in ``pretrained``;
    ``config`` adds keys to its LongformerConfig (the labels)."""
    model_config = LongformerConfig.from_pretrained(pretrained, **config)
    setattr(model_config, CONFIG_KEY, pooling)
    return classifier_class(pooling).from_pretrained(pretrained, config=model_config)


def load_classifier(model_dir: Path) -> LongformerForSequenceClassification:
    """A finetuned classifier, with the head it was trained with."""
    config = LongformerConfig.from_pretrained(model_dir)
    return classifier_class(pooling_of(config)).from_pretrained(model_dir)
