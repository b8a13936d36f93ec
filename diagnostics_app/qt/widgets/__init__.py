"""Widgets: each gets what it shows through its constructor or a ``set_*`` method and emits
signals for what the user asks; none decides anything about the data."""
