"""The opening message's line about the line's own hours (data/hours.yml, bank holidays)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker

from actions.common import in_thread
from bot.directory.schedule import describe, line_status

logger = logging.getLogger(__name__)


class ActionLineStatus(Action):
    """Says whether the out-of-hours team is on duty now, and until when."""

    def name(self) -> Text:
        return "action_line_status"

    async def run(self, dispatcher, tracker: Tracker, domain) -> List[Dict[Text, Any]]:
        try:
            status = await in_thread(line_status)
        except Exception:  # noqa: BLE001 - the opening goes on without this one line
            logger.exception("could not read the line's schedule")
            return []
        dispatcher.utter_message(text=describe(status))
        return []
