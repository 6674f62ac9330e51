"""Knowledge base (methodology §7): measurements and validated optimisations keyed by environment fingerprint.

:mod:`fingerprint` defines the environment key and the similarity formula, :mod:`schema` the
tables and migrations, :mod:`store` the SQLite/PostgreSQL store, :mod:`confidence` how A/B
history turns into a recommendation's confidence.
"""

from infersight.errors import InputError

__all__ = ["MissingDependencyError"]


class MissingDependencyError(InputError):
    """An optional dependency (SQLAlchemy, a database driver) is not installed: one line, exit 2."""
