"""Import every module that defines tables, so ``Base.metadata`` knows them all.

Alembic's env.py and the migration tests import this. A new module with models adds a line.
"""

from bot.store import models  # noqa: F401  escalations, audit trail
