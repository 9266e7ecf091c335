"""The line's Rasa input channels (SMS, web chat, staff relay), loaded by the Rasa server."""

from bot.channels.memory_guard import install as _install_memory_guard
from bot.channels.nluthread import install as _install_nlu_thread
from bot.rasa_speedups import install as _install_speedups

# The channels are what the Rasa server loads of ours first; see bot/rasa_speedups.py and
# bot/channels/nluthread.py. The conversation memory of risk (bot/channels/memory_guard.py) is
# not a speed-up: it is always installed.
_install_speedups()
_install_nlu_thread()
_install_memory_guard()
