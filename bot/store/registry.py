"""Import every module that defines tables, so ``Base.metadata`` knows them all.

Alembic's env.py and the migration tests import this. Every model lives in ``bot/store/models/``
(one module per area), so the registry never imports a layer above the store. A new module
with models adds a line.
"""

from bot.store import models  # noqa: F401  Base; escalations and their audit trail
from bot.store.models import directory  # noqa: F401  service directory, sanctuary beds, unmet needs
from bot.store.models import duty  # noqa: F401  staff, sessions, rota changes
from bot.store.models import handoff  # noqa: F401  alert jobs (ladder timers), staff SMS links
from bot.store.models import sms  # noqa: F401  sms inbox, outbox, contacts
from bot.store.models import feedback  # noqa: F401  feedback survey: people, surveys, answers, comments
from bot.store.models import blocks  # noqa: F401  the block list (senders blocked by a duty manager)
from bot.store.models import plan  # noqa: F401  the person's own crisis plan (encrypted), plan sessions
