"""diagnostics_app: diagnostics for audio feature caches.

The package is split in two: :mod:`diagnostics_app.core` holds every rule and imports no Qt;
:mod:`diagnostics_app.qt` holds thin adapters that show the core in a desktop window.
"""

__version__ = "0.1.0"
APP_NAME = "Diagnostics App"
