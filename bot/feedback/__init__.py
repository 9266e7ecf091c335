"""Asking, gently: two or three questions after a conversation ends (docs/feedback.md).

``questions``: the YAML file a user group edits, validated; ``survey``: the survey as a pure
state machine and who may be asked; ``store``: its tables (``bot/store/models/feedback.py``).
No Rasa here: the actions offer the survey, the channels carry the answers.
"""
