"""The desktop front end: thin PySide6 adapters over :mod:`diagnostics_app.core`.

Nothing here holds a rule. Widgets get the :class:`~diagnostics_app.qt.controller.Controller`
(the Qt face of the core's :class:`~diagnostics_app.core.session.Session`) through their
constructor, call it for every action, and redraw from the :class:`Diagnosis` it re-derives.
"""
