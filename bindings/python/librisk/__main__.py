"""``python3 -m librisk import-graph FILE... [--user-key userPrincipalName]``.

Imports into a journal (``--journal PATH``), an SQLite store (``--sqlite
PATH``) or, without either, a throw-away in-memory engine (a dry run that
only prints the summary). The input is read and checked before the store
is opened. Exit status 0 when everything was imported, 1 when a detection
was skipped, a closing failed, or the input or store could not be used.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import Engine, RiskError, SQLiteStore
from .graph import ACTOR, import_graph, read_files


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m librisk")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("import-graph", help="import a Microsoft Graph riskDetection export")
    g.add_argument("file", nargs="+",
                   help="Graph list responses (pages), arrays, JSON lines, or directories "
                        "of them")
    g.add_argument("--user-key", choices=["userId", "userPrincipalName"], default="userId",
                   help="which Graph field is the user id (default userId)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--journal", metavar="PATH", help="import into this journal store")
    where.add_argument("--sqlite", metavar="PATH", help="import into this SQLite store")
    g.add_argument("--actor", default=ACTOR, help=f"actor of the changes (default {ACTOR})")
    args = p.parse_args(argv)
    try:
        notes: List[str] = []
        # all of the input is read and checked before a store is opened
        raws = read_files(args.file, notes)
        if args.journal:
            # synced in the background and once at the end, as riskctl's
            # event import does: an fdatasync per detection took minutes
            engine = Engine.open(args.journal, durability="normal")
        elif args.sqlite:
            engine = Engine(store=SQLiteStore(args.sqlite))
        else:
            engine = Engine.memory()
        with engine:
            summary = import_graph(engine, raws, user_key=args.user_key, actor=args.actor)
            summary.notes[:0] = notes
            if args.journal:
                engine.sync()
    except (OSError, ValueError, RiskError) as exc:
        print(f"librisk import-graph: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
