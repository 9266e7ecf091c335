"""A stand-in for the NLU process's child (bot/rasa_runtime/nluproc.py ``serve``), for
tests/unit/test_nlu_process.py: no model, so it is ready at once; its cues are the texts.
Kept apart from the tests so that the spawned child imports nothing heavy."""

from __future__ import annotations

import os
import time
from pathlib import Path


def stand_in(conn, model_path: str) -> None:
    """A child that answers without a model; its cues are the message texts."""
    model_id = Path(model_path).read_text().strip()
    conn.send(("ready", model_id, os.getpid()))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        _, request_id, payload, _only = request
        text = payload["text"]
        if text == "hang":
            time.sleep(3)
        elif text.startswith("slow"):
            time.sleep(0.1)
        elif text == "die":
            os._exit(1)
        elif text == "boom":
            conn.send(("parsed", request_id, False, "RuntimeError"))
            continue
        conn.send(("parsed", request_id, True, {
            "text": text, "intent": {"name": "greet", "confidence": 0.9}, "entities": [],
            "parsed_by": os.getpid(),
        }))
