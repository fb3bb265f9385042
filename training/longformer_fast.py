"""Blocked sliding-window attention for transformers' Longformer, and the export graph.

``blocked_attention`` computes exactly what ``LongformerSelfAttention.forward`` computes
(same weights, same masks, same float32 softmax) for the two shapes Treelens uses: no
global token (MLM pretraining) or one global token at position 0 ([CLS], classification).
Queries are cut into blocks of w = window/2 tokens; each block attends to the keys of the
previous, its own and the next block under a static band mask |i - j| <= w, plus the
[CLS] key column. Only reshapes, concats, matmuls and softmax: it trains faster than
transformers' strided chunking on CPU, and it traces into an ONNX graph that is exact at
every length that is a multiple of the window (transformers' ``as_strided`` chunking
exports wrong numbers, even at the traced length).

``ClassifierGraph`` is what gets exported: the classifier's logits, computing in the last
layer only what the [CLS] output depends on (its global attention over all tokens, its
feed-forward) when the head reads [CLS] alone. Same function of the same weights; the
export checks it against stock transformers eager at every bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import LongformerForSequenceClassification
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

from treelens.training.pooling import pooling_of
from treelens.training.stage_configs import PROBES

_STOCK_FORWARD = LongformerSelfAttention.forward


def _key_blocks(x: torch.Tensor, w: int) -> torch.Tensor:
    """(..., S, d) -> (..., S/w, 3w, d): for every block of w positions, the positions of
    the previous, its own and the next block (zeros beyond either end)."""
    padded = nn.functional.pad(x, (0, 0, w, w))
    blocks = padded.reshape(*x.shape[:-2], -1, w, x.shape[-1])
    return torch.cat([blocks[..., :-2, :, :], blocks[..., 1:-1, :, :], blocks[..., 2:, :, :]], dim=-2)


def _global_output(
    self: LongformerSelfAttention, hidden: torch.Tensor, is_index_masked: torch.Tensor, head_mask
) -> torch.Tensor:
    """The [CLS] (position 0) output: its global query against every token's global key."""
    batch, length, _ = hidden.shape
    heads, dim = self.num_heads, self.head_dim
    query = (self.query_global(hidden[:, :1]) / math.sqrt(dim)).view(batch, 1, heads, dim).transpose(1, 2)
    key = self.key_global(hidden).view(batch, length, heads, dim).transpose(1, 2)
    value = self.value_global(hidden).view(batch, length, heads, dim).transpose(1, 2)
    scores = torch.matmul(query, key.transpose(-1, -2))  # (B, H, 1, S)
    scores = scores.masked_fill(is_index_masked[:, None, None, :], torch.finfo(scores.dtype).min)
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32)
    if head_mask is not None:
        probs = head_mask.view(1, -1, 1, 1) * probs
    probs = nn.functional.dropout(probs.type_as(scores), p=self.dropout, training=self.training)
    return torch.matmul(probs, value).transpose(1, 2).reshape(batch, 1, heads * dim)


def blocked_attention(
    self: LongformerSelfAttention,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    layer_head_mask: torch.Tensor | None = None,
    is_index_masked: torch.Tensor | None = None,
    is_index_global_attn: torch.Tensor | None = None,
    is_global_attn: bool | None = None,
    output_attentions: bool = False,
):
    """Drop-in for LongformerSelfAttention.forward; other shapes go to the stock method."""
    if output_attentions or (
        is_global_attn
        and not torch.jit.is_tracing()
        and (is_index_global_attn[:, 1:].any() or not is_index_global_attn[:, 0].all())
    ):
        return _STOCK_FORWARD(
            self, hidden_states, attention_mask, layer_head_mask, is_index_masked,
            is_index_global_attn, is_global_attn, output_attentions,
        )  # fmt: skip
    batch, length, embed = hidden_states.shape
    heads, dim, w = self.num_heads, self.head_dim, self.one_sided_attn_window_size

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, S, E) -> (B, H, S, d)
        return x.view(batch, length, heads, dim).transpose(1, 2)

    query = split(self.query(hidden_states) / math.sqrt(dim))
    key, value = split(self.key(hidden_states)), split(self.value(hidden_states))
    query_blocks = query.reshape(batch, heads, -1, w, dim)  # (B, H, S/w, w, d)
    key_blocks, value_blocks = _key_blocks(key, w), _key_blocks(value, w)  # (B, H, S/w, 3w, d)
    scores = torch.matmul(query_blocks, key_blocks.transpose(-1, -2))  # (B, H, S/w, w, 3w)

    # a key is in a query's window when it is a plain token (not padding, not global),
    # inside the sequence and within w positions of the query
    local_key = (
        _key_blocks((attention_mask == 0).to(query.dtype)[:, :, None], w)[..., 0] > 0.5
    )  # (B, S/w, 3w)
    row = torch.arange(w, device=query.device)[:, None]
    column = torch.arange(3 * w, device=query.device)[None, :]
    band = (column - w - row).abs() <= w  # (w, 3w)
    lowest = torch.finfo(scores.dtype).min  # bf16 under GPU autocast, whatever the hidden states' dtype
    scores = scores.masked_fill(~(local_key[:, None, :, None, :] & band), lowest)
    if is_global_attn:  # every token also attends to [CLS], through its local key
        cls_scores = torch.matmul(query_blocks, key[:, :, :1, None, :].transpose(-1, -2))  # (B, H, S/w, w, 1)
        scores = torch.cat([cls_scores, scores], dim=-1)
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32)
    if layer_head_mask is not None:
        probs = layer_head_mask.view(1, -1, 1, 1, 1) * probs
    probs = probs.masked_fill(is_index_masked.reshape(batch, 1, -1, w, 1), 0.0).type_as(scores)
    probs = nn.functional.dropout(probs, p=self.dropout, training=self.training)
    if is_global_attn:
        output = torch.matmul(probs[..., 1:], value_blocks) + probs[..., :1] * value[:, :, :1, None, :]
    else:
        output = torch.matmul(probs, value_blocks)
    output = output.reshape(batch, heads, length, dim).transpose(1, 2).reshape(batch, length, embed)
    if is_global_attn:
        cls = _global_output(self, hidden_states, is_index_masked, layer_head_mask)
        output = torch.cat([cls, output[:, 1:]], dim=1)
    return (output,)


@contextmanager
def fast_longformer() -> Iterator[None]:
    """Use blocked_attention in every Longformer for the duration of the block."""
    LongformerSelfAttention.forward = blocked_attention
    try:
        yield
    finally:
        LongformerSelfAttention.forward = _STOCK_FORWARD


class ClassifierGraph(nn.Module):
    """(input_ids, attention_mask) -> logits of a LongformerForSequenceClassification, for export.

    Inputs must be padded to a multiple of the attention window (the runtime pads to its
    length buckets). [CLS] gets global attention, as the classifier gives it. With the stock
    head the last layer computes only the [CLS] row, the only one the head reads; so it does
    with a ``segments-below`` head, whose segment means come from the layer below; a
    ``segments`` or probe head (training/pooling.py) reads every token, so the last layer
    runs whole.
    """

    def __init__(self, model: LongformerForSequenceClassification) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        longformer = self.model.longformer
        # 0 = padding, 1 = local, 2 = global ([CLS]), as LongformerModel.forward merges them
        first = torch.arange(input_ids.shape[1], device=input_ids.device) == 0
        merged = attention_mask * (1 + first.to(attention_mask.dtype))[None, :]
        extended = longformer.get_extended_attention_mask(merged, input_ids.shape)[:, 0, 0, :]
        is_index_masked, is_index_global = extended < 0, extended > 0
        hidden = longformer.embeddings(input_ids=input_ids)
        layers = longformer.encoder.layer
        pooling = pooling_of(self.model.config)
        whole = pooling in ("segments", *PROBES)
        with fast_longformer():
            for layer in layers if whole else layers[:-1]:
                hidden = layer(
                    hidden,
                    attention_mask=extended,
                    is_index_masked=is_index_masked,
                    is_index_global_attn=is_index_global,
                    is_global_attn=True,
                )[0]
        head = self.model.classifier
        if whole:
            return head(head.features(hidden[:, 0], hidden, input_ids, attention_mask))
        last = layers[-1]
        cls = _global_output(last.attention.self, hidden, is_index_masked, None)
        attended = last.attention.output(cls, hidden[:, :1])
        cls_hidden = last.output(last.intermediate(attended), attended)
        if pooling == "segments-below":
            return head(head.features(cls_hidden[:, 0], hidden, input_ids, attention_mask))
        return head(cls_hidden)
