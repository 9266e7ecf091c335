"""The line's Rasa input channels (SMS, web chat, REST, staff relay), loaded by the Rasa server.

Importing the package does nothing else: whatever reaches inside Rasa lives in
``bot/rasa_runtime`` and is installed by ``python -m bot.rasa_server``.
"""
