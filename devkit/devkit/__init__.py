"""Sikkerhetsnett's development kit: the local Bot API (``devkit.localapi``), the demo page
(``devkit.demo``), and ``python -m devkit chat | localapi``.

A distribution of its own (``sikkerhetsnett-devkit``), installed by ``make install`` for
development, tests and the demo, never in production. The bot does not import it: it finds
``devkit.kit.KIT`` through the ``sikkerhetsnett.demo`` entry point when it runs without a token.
"""
