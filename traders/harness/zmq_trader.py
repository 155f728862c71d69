"""``zmq-trader``: the harness over ZeroMQ, under the old tool's name.

``zmq-trader ARGS`` is ``dex-trader --transport zmq ARGS``: the same options,
the same summary and exit codes (``traders.harness.cli``). The old spellings
work as written::

    zmq-trader -server tcp://localhost:5555 -traders 100 -rate 100 -duration 30s

(``tcp://`` and ``zmq://`` URLs are both accepted; ``-traders`` is
``--workers``, the traders of this process.)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from traders.harness import cli


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.lstrip("-").partition("=")[0] == "transport" for a in args if a.startswith("-")):
        print("zmq-trader: --transport is always zmq here (dex-trader --transport NAME for the others)", file=sys.stderr)
        return cli.EXIT_UNAVAILABLE
    if "-h" in args or "--help" in args:
        print("zmq-trader is dex-trader --transport zmq; its options:\n")
    return cli.main(["--transport", "zmq", *args])


if __name__ == "__main__":
    sys.exit(main())
