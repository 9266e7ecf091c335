"""``python -m bot.store upgrade`` brings the database (``DATABASE_URL``) up to date."""

import argparse
import sys

from bot.store import migrate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.store")
    parser.add_argument("command", choices=["upgrade", "downgrade"])
    parser.add_argument("--revision", default=None)
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        migrate.upgrade(revision=args.revision or "heads")
    else:
        migrate.downgrade(revision=args.revision or "base")
    return 0


if __name__ == "__main__":
    sys.exit(main())
