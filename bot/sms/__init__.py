"""The SMS transport: its tables, pseudonyms, segments, keywords, and the outbox with its sender.

Depends only on ``bot.store`` and ``bot.settings``; the Rasa SMS channel (``bot.channels.sms``),
the escalation ladder and the duty service use it.
"""
