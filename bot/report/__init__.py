"""The line's report for commissioners and user groups: anonymous figures over a date range.

``figures.build`` reads the project's tables (escalations and their audit trail) and Rasa's
tracker store (the ``events`` table: when people wrote, on which channel, with what risk)
into a ``Report`` of ``Figure``s; ``suppress`` turns every count under 5 into "fewer than 5";
``render`` writes the self-contained HTML (inline CSS and SVG plots) and the CSV;
``python -m bot.report`` is the command, ``bot/duty`` serves the same report and its JSON.

No Rasa imports: the report reads Rasa's table through its own declaration
(``bot.store.rasa_events.RASA_EVENTS``). See docs/report.md.
"""
