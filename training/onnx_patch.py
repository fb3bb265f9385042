"""An export-friendly Longformer sliding window, used only while tracing for ONNX.

transformers builds the overlapping attention chunks with ``Tensor.as_strided``. A
traced ``as_strided`` keeps the strides of the length it was traced at, so a graph
with a dynamic length silently computes garbage at any other length. The two methods
below build the same chunks from reshapes, slices and a concat: pure data movement, so
the results are bitwise those of the original at every length, and the traced graph
stays correct when the length changes. The export still proves parity at every bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers.models.longformer.modeling_longformer import LongformerSelfAttention


def _chunk(hidden_states: torch.Tensor, window_overlap: int, onnx_export: bool = False) -> torch.Tensor:
    """(B, S, D) -> (B, S/w - 1, 2w, D): chunk i holds positions [i*w, i*w + 2w)."""
    batch, _length, dim = hidden_states.size()
    blocks = hidden_states.reshape(batch, -1, window_overlap, dim)
    return torch.cat([blocks[:, :-1], blocks[:, 1:]], dim=2)


def _sliding_chunks_matmul_attn_probs_value(
    self: LongformerSelfAttention, attn_probs: torch.Tensor, value: torch.Tensor, window_overlap: int
) -> torch.Tensor:
    """transformers' method with the strided view of the padded values replaced by a concat
    of three shifted block views (chunk c holds padded positions [c*w, c*w + 3w))."""
    batch, length, heads, head_dim = value.size()
    chunked_attn_probs = attn_probs.transpose(1, 2).reshape(
        batch * heads, -1, window_overlap, 2 * window_overlap + 1
    )
    value = value.transpose(1, 2).reshape(batch * heads, length, head_dim)
    padded_value = nn.functional.pad(value, (0, 0, window_overlap, window_overlap), value=-1)
    blocks = padded_value.reshape(batch * heads, -1, window_overlap, head_dim)
    chunked_value = torch.cat([blocks[:, :-2], blocks[:, 1:-1], blocks[:, 2:]], dim=2)
    chunked_attn_probs = self._pad_and_diagonalize(chunked_attn_probs)
    context = torch.einsum("bcwd,bcdh->bcwh", (chunked_attn_probs, chunked_value))
    return context.view(batch, heads, length, head_dim).transpose(1, 2)


@contextmanager
def exportable_longformer() -> Iterator[None]:
    """Swap in the concat-based chunking for the duration of an export, then restore."""
    original_chunk = LongformerSelfAttention.__dict__["_chunk"]
    original_matmul = LongformerSelfAttention._sliding_chunks_matmul_attn_probs_value
    LongformerSelfAttention._chunk = staticmethod(_chunk)
    LongformerSelfAttention._sliding_chunks_matmul_attn_probs_value = _sliding_chunks_matmul_attn_probs_value
    try:
        yield
    finally:
        LongformerSelfAttention._chunk = original_chunk
        LongformerSelfAttention._sliding_chunks_matmul_attn_probs_value = original_matmul
