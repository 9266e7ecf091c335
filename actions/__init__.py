"""Custom actions, split by topic. rasa-sdk imports every module of this package.

Actions are thin: they read the tracker and call into ``bot/``. None of them logs message text.
"""
