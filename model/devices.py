"""Where the model can run: the one list of device names.

The daemon's ``treelens.device`` setting, both CLIs' ``--device`` and the runtime's
provider choice read it here; the extension mirrors it (package.json's enum and
``protocol.ts``), checked against ``python -m treelens.daemon --describe-protocol``.
Kept free of imports so that argument parsers can use it without loading onnxruntime.
"""

from __future__ import annotations

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
"""``auto``: CUDA when it is available, else the CPU; ``cpu``; ``cuda`` (an error when absent)."""
DEFAULT_DEVICE = "auto"
