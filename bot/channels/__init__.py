"""Channel adapters: one per way out (Telegram; SMS lives beside its providers in ``bot.sms``).

An adapter sends one rendered ``bot.messages.Message`` and classifies the outcome; the sender
(``bot.sender``) does everything else. A new channel (a clinic's webhook) is one more adapter.
"""
