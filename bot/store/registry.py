"""Import every module that defines tables, so ``Base.metadata`` knows them all.

Alembic's env.py and the migration tests import this. A new module with models adds a line.
"""

from bot.store import models  # noqa: F401  escalations, audit trail
from bot.directory import models as directory_models  # noqa: F401  service directory
from bot.sms import models as sms_models  # noqa: F401  sms inbox, outbox, contacts
from bot.duty import models as duty_models  # noqa: F401  staff, sessions, sanctuary beds
from bot.escalation import models as handoff_models  # noqa: F401  alert jobs (ladder timers)
