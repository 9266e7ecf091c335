"""The person's own crisis plan (docs/plan.md): built step by step in the conversation, sent
back with PLAN, shared with the person who joins only with their consent, deleted with a word.

``sections``: the plan's steps in plain words, cleaning what a person writes, and the plan as
text; ``flow``: one message in, what to say and what to keep (a pure state machine);
``crypto``: the plan's words encrypted under ``PLAN_KEY``; ``store``: its tables
(``bot/store/models/plan.py``); ``live``: which conversations are building a plan, known
without a query each turn; ``reading``: the console's view, audited before it is read.
No Rasa here: the channels carry the messages (``bot/channels/plan_turn.py``).
"""
