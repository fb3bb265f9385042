"""The expected failures, under one base class, so that callers can tell them from bugs.

An expected failure comes from outside the code: a folder that cannot be read, a data line
that does not parse, a model bundle that fails its checks, a tool that is missing or fails,
a bad argument or setting. Its message is one line for a person: what happened, where, and
what to do. The command lines (``treelens``, ``treelens-train``) print exactly these as one
line and exit 1; any other exception is a bug and keeps its traceback. The daemon answers
them with the error codes of daemon/protocol.py, and answers anything else with
InternalError, logged with its traceback.

Each domain keeps its own subclass beside the code that raises it (ScanError in
daemon/scan.py, BundleError in model/bundle.py, ...); this module only holds what they share.
"""

from __future__ import annotations


class TreelensError(Exception):
    """An expected failure; the message says what happened, where and what to do."""


class UsageError(TreelensError, ValueError):
    """A bad argument, option or setting value (e.g. ``--threshold gui=0.3``, ``--device cuda``
    without a GPU). A ValueError too, so that code which validated with ValueError before
    keeps catching it."""
