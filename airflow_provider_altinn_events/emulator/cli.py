"""``altinn-events-emulator``: serve the local Altinn until interrupted.

Prints ``Altinn emulator listening on http://HOST:PORT`` once it accepts connections (``--port 0``
prints the real port).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .config import DEFAULT_MAX_BODY_BYTES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="altinn-events-emulator",
        description="A local Altinn: Maskinporten, the Altinn token exchange and the Events API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default 8765)")
    parser.add_argument(
        "--data", metavar="PATH", help="SQLite file for persistent state (default: in memory)"
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        default=1800,
        metavar="S",
        help="lifetime of exchanged Altinn tokens in seconds (default 1800)",
    )
    parser.add_argument(
        "--visibility-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds before a new event is readable (real service: 30; default 0)",
    )
    parser.add_argument(
        "--allow-http-webhooks",
        action="store_true",
        help="also accept http://127.0.0.1 / http://localhost webhook endpoints",
    )
    parser.add_argument(
        "--public-url", metavar="URL", help="base URL to advertise (next links, issuer) when behind a proxy"
    )
    parser.add_argument(
        "--retry-schedule",
        choices=("real", "fast"),
        default="real",
        help="push/validation retry schedule: the real one or compressed to ~50 ms steps",
    )
    parser.add_argument("--fast-retries", action="store_true", help="same as --retry-schedule fast")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="largest accepted request body (default 30000000, as Kestrel)",
    )
    parser.add_argument(
        "--subscription-cache-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="model Altinn's subscription cache on the push path: a new subscription may get its first push "
        "and a deleted one its last only after up to S seconds (production behaves like 3600; default 0)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .server import EmulatorServer, bind_socket

    server = EmulatorServer(
        host=args.host,
        port=args.port,
        data_path=args.data,
        token_lifetime=args.token_lifetime,
        visibility_delay=args.visibility_delay,
        allow_http_webhooks=args.allow_http_webhooks,
        fast_retries=args.fast_retries or args.retry_schedule == "fast",
        public_url=args.public_url,
        max_body_bytes=args.max_body_bytes,
        log_level=args.log_level,
        subscription_cache_seconds=args.subscription_cache_seconds,
    )
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        sys.exit(f"altinn-events-emulator: cannot listen on {args.host}:{args.port}: {exc}")

    def ready() -> None:
        print(f"Altinn emulator listening on {server.listen_url}", flush=True)

    uvicorn_server = server.build(sock, on_ready=ready)
    try:
        uvicorn_server.run(sockets=[sock])
    finally:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
