"""``dex-trader``: drive an exchange with seeded traders, measure it, reconcile with its counters.

Examples::

    dex-trader --transport inproc --workers 4 --duration 5s
    dex-trader --server http://127.0.0.1:8080 --workers 8 --batch 1000 --procs 2 --duration 60s
    dex-trader --transport http --batch 1 --rate 1000 --duration 15s --json reports/latency.json
    dex-trader --transport http --keys var/keys --duration 5s     # against turbo-dex --auth keys --keys var/keys
    dex-trader --transport http --keys var/keys --key-scheme hmac # the same with HMAC-SHA256 development keys

The single-dash spellings of the tool this replaces (``-server``,
``-workers``, ``-traders``, ``-batch``, ``-rate``, ``-duration``) are accepted
too (``transports.core.legacy_flags``, the same for every command).

Exit codes: 0 done; 1 reconciliation differs and ``--strict-reconcile``;
2 bad options, the server cannot be reached, or it stopped answering during
the run (then the results so far are still printed and written to ``--json``,
with ``error`` saying what ended the run).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from engine import NotConnected
from traders.harness import procs, results
from traders.harness.clients import UnknownTransport, transport_names
from traders.harness.config import DEFAULT_SERVER, WORKLOADS, ConfigError, HarnessConfig, new_run_id, parse_duration
from traders.harness.progress import ProgressView
from transports.core import legacy_flags
from transports.core.keys import SCHEMES

EXIT_OK = 0
EXIT_RECONCILE = 1
EXIT_UNAVAILABLE = 2


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dex-trader", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument(
        "--transport",
        default="http",
        choices=transport_names(),
        help="inproc (a gateway in this process) or a server transport (default: http)",
    )
    parser.add_argument(
        "--server",
        default=None,
        help=f"server URL (default: the transport's own: $DEX_SERVER or {DEFAULT_SERVER} for http, "
        "$DEX_GRPC_SERVER or grpc://127.0.0.1:50051, $DEX_ZMQ_SERVER or zmq://127.0.0.1:5555)",
    )
    parser.add_argument("--workers", "--traders", type=int, default=4, help="traders per process, one asyncio task each (default: 4)")
    parser.add_argument("--procs", type=int, default=1, help="processes, each running --workers traders (default: 1)")
    parser.add_argument("--batch", type=int, default=100, help="commands per submit (default: 100)")
    parser.add_argument("--rate", type=float, default=0.0, help="commands/s over all traders, open loop; 0 = closed loop (default)")
    parser.add_argument("--duration", type=_duration, default=10.0, help="measured time: 10s, 1m, 500ms (default: 10s)")
    parser.add_argument("--warmup", type=_duration, default=2.0, help="unmeasured time before it (default: 2s)")
    parser.add_argument("--symbols", default="", help="comma-separated symbols to trade (default: all the server lists)")
    parser.add_argument("--seed", type=int, default=42, help="workload seed; the same seed sends the same streams (default: 42)")
    parser.add_argument("--trader-prefix", default="trader", help="trader ids are <prefix>-<run id>-<proc>-<i> (default: trader)")
    parser.add_argument(
        "--run-id",
        default=None,
        help="the run id in every trader and client order id (default: a fresh one per run, so a second run is not refused "
        "as DUPLICATE_CLIENT_ORDER_ID); give the id of an earlier run to send exactly its commands again",
    )
    parser.add_argument(
        "--workload",
        default="live",
        choices=WORKLOADS,
        help="live (default): cancels and replaces name only orders the replies showed still resting; "
        "exercise-unknown: the fixed stream, which also names orders already filled (UNKNOWN_ORDER rejects)",
    )
    parser.add_argument(
        "--key",
        dest="key_file",
        default=None,
        metavar="FILE",
        help="sign every request with this API key (a credential from dex-keys create); every trader acts as its trader",
    )
    parser.add_argument(
        "--keys",
        dest="keys_dir",
        default=None,
        metavar="DIR",
        help="a development keyring on this machine: each trader gets its own key, created on first use (docs/security.md)",
    )
    parser.add_argument(
        "--key-scheme",
        default="ed25519",
        choices=SCHEMES,
        help="with --keys: the scheme of the development keys created (default ed25519; hmac: HMAC-SHA256, a shared secret)",
    )
    parser.add_argument("--json", dest="json_path", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no live progress and no summary; problems only")
    parser.add_argument("--strict-reconcile", action="store_true", help="exit 1 when the server's counters differ")
    return parser


def config_from_args(args: argparse.Namespace) -> HarnessConfig:
    return HarnessConfig(
        transport=args.transport,
        server=args.server,
        workers=args.workers,
        procs=args.procs,
        batch=args.batch,
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        symbols=tuple(s.strip() for s in args.symbols.split(",") if s.strip()),
        seed=args.seed,
        trader_prefix=args.trader_prefix,
        run_id=new_run_id() if args.run_id is None else args.run_id,
        workload=args.workload,
        key_file=args.key_file,
        keys_dir=args.keys_dir,
        key_scheme=args.key_scheme,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = legacy_flags.parse_args(parser, argv)
    console = Console(soft_wrap=True)
    errors = Console(stderr=True, soft_wrap=True)
    try:
        config = config_from_args(args)
        where = config.server or "(default URL)"
        title = f"dex-trader → {config.transport} {where}, run {config.run_id or '-'}, seed {config.seed}"
        with ProgressView(console, title, enabled=not args.quiet) as view:
            outcome = procs.run(config, view)
    except NotConnected as exc:
        errors.print(f"dex-trader: the {args.transport} server is unreachable: {exc.message}", highlight=False)
        return EXIT_UNAVAILABLE
    except (ConfigError, UnknownTransport) as exc:
        errors.print(f"dex-trader: {exc}", highlight=False)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        errors.print("dex-trader: interrupted", highlight=False)
        return 130
    merged = results.merge(outcome.results)
    report = results.build_report(
        config,
        merged,
        outcome.before,
        outcome.after,
        "in-process" if config.transport == "inproc" else config.server or "(default URL)",
        outcome.window,
    )
    if args.json_path:
        results.write_json(args.json_path, report)
    reconciled = bool(report["reconciliation"]["ok"])
    if not args.quiet:
        results.print_summary(report, console)
    elif not reconciled and not merged.error:
        results.print_reconciliation(report["reconciliation"], errors)
    if merged.error:
        errors.print(f"dex-trader: the {config.transport} server became unreachable during the run: {merged.error}", highlight=False)
        return EXIT_UNAVAILABLE
    if not reconciled and args.strict_reconcile:
        return EXIT_RECONCILE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
