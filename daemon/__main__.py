"""``python -m treelens.daemon``: the Treelens language server on stdio (``--check``: a health
check; ``--describe-protocol``: the names and settings the extension mirrors, as JSON).

stdout carries the LSP stream, so every log line goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from treelens.model.devices import DEFAULT_DEVICE, DEVICES

LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m treelens.daemon",
        description="The Treelens language server (LSP over stdio): classifies the open workspace "
        "folders from their file trees and keeps the labels current as files change.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="load the model, classify the current folder, print the result and exit "
        "(0 healthy, 1 folder unreadable, 2 no usable model)",
    )
    parser.add_argument(
        "--describe-protocol",
        action="store_true",
        help="print the protocol's methods, error codes and engines and the settings' keys, "
        "defaults and limits as JSON and exit (the extension's tests compare their copies with it)",
    )
    parser.add_argument("--folder", type=Path, default=Path("."), help="folder for --check (default: .)")
    parser.add_argument(
        "--model-path", type=Path, default=None, help="model bundle for --check (default: the shipped one)"
    )
    parser.add_argument(
        "--device", choices=DEVICES, default=DEFAULT_DEVICE, help="--check's device (default: %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="--check prints the classify result as JSON")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info", help="log level (default: info)")
    return parser


def describe_protocol() -> dict[str, Any]:
    """What the extension mirrors (protocol.ts, package.json's settings), from their owners."""
    from treelens.daemon import protocol, settings

    return {**protocol.describe(), "settings": settings.describe()}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.describe_protocol:
        print(json.dumps(describe_protocol(), indent=2))
        return 0
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pygls").setLevel(logging.WARNING)  # at INFO it logs every message body
    logging.getLogger("watchdog").setLevel(max(logging.INFO, logging.getLogger().level))  # one line per event
    if args.check:
        from treelens.daemon.check import run_check

        return run_check(args.folder, args.model_path, args.device, args.json)
    from treelens.daemon.handlers import build_server

    build_server().start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
