#!/usr/bin/env python3
"""misp-ingest: MISP ZeroMQ feeds -> live dashboard statistics in Redis.

    python zmq_subscriber.py --config config/config.yaml        run the daemon
    python zmq_subscriber.py --config PATH --check-config       validate and exit
    python zmq_subscriber.py --config PATH --status             status of every feed
    python zmq_subscriber.py record --url tcp://misp:50000 --out feed.jsonl
    python zmq_subscriber.py replay feed.jsonl [--publish tcp://127.0.0.1:50000 --rate 500]
    python zmq_subscriber.py demo                               sample feed into a private Redis
    python zmq_subscriber.py --config PATH admin give-badge ORG N   (see helpers/admin.py)
"""

from __future__ import annotations

import argparse
import logging
import sys

from helpers.config import Config, ConfigError, load_config
from helpers.logsetup import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="zmq_subscriber.py",
                                description="Ingest MISP ZeroMQ feeds into the dashboard's Redis.")
    p.add_argument("--config", metavar="PATH", help="YAML configuration (default: built-in "
                   "defaults, see config/config.example.yaml)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check-config", action="store_true", help="validate the configuration "
                      "and exit (0: valid)")
    mode.add_argument("--status", action="store_true", help="print the status of every feed")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    rec = sub.add_parser("record", help="append a feed's frames to a capture file")
    rec.add_argument("--url", required=True, help="MISP ZeroMQ URL, e.g. tcp://misp:50000")
    rec.add_argument("--instance", default="misp1", help="instance name stored with each frame")
    rec.add_argument("--out", required=True, help="capture file (JSON Lines, appended)")
    rec.add_argument("--count", type=int, help="stop after this many frames")
    rec.add_argument("--seconds", type=float, help="stop after this long")
    rec.add_argument("--username", help="ZeroMQ PLAIN username")
    secret = rec.add_mutually_exclusive_group()
    secret.add_argument("--password", help="ZeroMQ PLAIN password (visible in the process list: "
                        "prefer --password-file)")
    secret.add_argument("--password-file", metavar="PATH",
                        help="file whose first line is the ZeroMQ PLAIN password")

    rep = sub.add_parser("replay", help="replay a capture through the daemon or onto a PUB socket")
    rep.add_argument("capture", help="capture file written by 'record'")
    rep.add_argument("--publish", metavar="BIND", help="publish on a PUB socket bound here "
                     "instead, e.g. tcp://127.0.0.1:50000")
    rep.add_argument("--rate", type=float, help="messages per second when publishing")
    rep.add_argument("--instance", help="publish only this instance's frames (a PUB socket "
                     "is one MISP feed)")

    demo = sub.add_parser("demo", help="publish the bundled sample feed into the daemon, "
                          "against a private Redis, and summarise what landed")
    demo.add_argument("--capture", help="capture to publish (default: the bundled sample)")

    from helpers.admin import add_parser as add_admin_parser

    add_admin_parser(sub)
    return p


def _load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _record(cfg: Config, args: argparse.Namespace) -> int:
    from helpers.capture import record

    password = args.password
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as fh:
                password = fh.readline().rstrip("\r\n")
        except OSError as exc:
            print(f"cannot read --password-file: {exc.strerror}", file=sys.stderr)
            return 2
    n = record(args.url, args.instance, args.out, count=args.count, seconds=args.seconds,
               username=args.username, password=password)
    logging.getLogger("record").info("recorded %d frames to %s", n, args.out)
    return 0


def _replay(cfg: Config, args: argparse.Namespace) -> int:
    from helpers.capture import publish
    from helpers.daemon import replay_capture

    if args.publish:
        publish(args.capture, args.publish, rate=args.rate, instance=args.instance)
    else:
        for stats in replay_capture(cfg, args.capture).values():
            print(stats.summary())
    return 0


def _admin(cfg: Config, args: argparse.Namespace) -> int:
    from helpers.admin import run_admin

    return run_admin(cfg, args)


def _status(cfg: Config, args: argparse.Namespace) -> int:
    from helpers.status_cli import print_status

    return print_status(cfg)


def _run(cfg: Config, args: argparse.Namespace) -> int:
    from helpers.daemon import Daemon

    try:
        daemon = Daemon(cfg)
    except ConfigError as exc:  # found only when opening it, e.g. a geo.database that is no MMDB
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return daemon.run()


COMMANDS = {"record": _record, "replay": _replay, "admin": _admin}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from helpers.demo import run_demo

        setup_logging("warning", "text")
        return run_demo(args.capture)
    cfg = _load(args.config)
    if args.check_config:
        print(f"configuration OK: {len(cfg.instances)} instance(s), Redis {cfg.redis!r}")
        return 0
    setup_logging(cfg.logging.level, cfg.logging.format, cfg.logging.file)
    command = _status if args.status else COMMANDS.get(args.command, _run)
    return command(cfg, args)


if __name__ == "__main__":
    sys.exit(main())
