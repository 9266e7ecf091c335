"""``python -m bot.rasa_server ARGS``: Rasa's own command line, with the line's runtime first.

The one way the line starts Rasa (``bot.run``, ``make shell``, the benchmarks, the conversation
tests): it installs ``bot.rasa_runtime`` (the conversation memory of risk, and the speed-ups
when ``RASA_PATCHES`` allows and the Rasa version is the one tested), then hands ``ARGS`` to
Rasa's CLI unchanged, e.g. ``python -m bot.rasa_server run --enable-api --model ...`` or
``python -m bot.rasa_server test core --stories ...``.
"""

from __future__ import annotations

import logging
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not logging.getLogger().handlers:
        # Rasa's CLI sets up its own logging later; until then the runtime's start-up line
        # (which patches are active) still reaches the console.
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)-8s %(name)s - %(message)s")
    from bot import rasa_runtime

    rasa_runtime.install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *args]
    rasa_main()


if __name__ == "__main__":  # not on import: nluproc's spawned child imports this module
    main()
