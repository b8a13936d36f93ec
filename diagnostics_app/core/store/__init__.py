"""The persistent feature store: an SQLite index plus one ``.npy`` array file per feature.

Layout of a cache folder::

    index.sqlite (+ -wal, -shm)   the index, WAL mode, shared by every process (GUI, CLI)
    data/                         committed array files, one per feature (+ one for its times),
                                  and the splice parts of features recomputed in part
    tmp/                          array files being written

An *entry* is what one calculator produced for one (source, profile, parameter overrides):
:class:`EntryKey`. It holds the structured fingerprint of its inputs (readable JSON, so
"why stale" can always be answered field by field), the calculator version, timestamps, and
one or more features (a calculator may produce several).

The rest of the core uses :class:`FeatureStore` and the record types, all importable from
here; none of it needs SQLite. The parts, each documented in its module:

- :mod:`.records`: the frozen value types and their JSON (keys, entries, jobs, ...);
- :mod:`.facade`: :class:`FeatureStore`, composing the parts below over one connection;
- :mod:`.connection`: the connection, its lock and the transaction discipline;
- :mod:`.schema`: the tables, created or migrated at open;
- :mod:`.arrays`: the one ``.npy`` writer (analysis and import) and the reader, u16db;
- :mod:`.writing`: the pass writer (the engine's sink) and the bulk import;
- :mod:`.staged`: passes staged by cluster workers in ``tmp/``, committed by the client;
- :mod:`.index`: listing entries and committing new data for a key;
- :mod:`.recovery`: what crashed processes left (garbage, orphans, dead writers);
- :mod:`.owners`: process liveness that survives pid reuse, and where a pid means something;
- :mod:`.lease`: liveness of owners elsewhere (another host or PID namespace): heartbeats;
- :mod:`.splicing`, :mod:`.spliced`: frames replaced in place (splice parts), and reading them;
- :mod:`.previous`: previous versions (the data an entry had before its last replacement);
- :mod:`.provenance`: what produced an entry's data (library versions), recorded at commit;
- :mod:`.trash`, :mod:`.digests`, :mod:`.jobs`: their tables.

Every OSError and SQLite error becomes a :class:`~diagnostics_app.core.errors.StoreError`
whose message is one line naming the path and the cause (:mod:`.causes`). Nothing here uses
pickle.
"""

from diagnostics_app.core.store.arrays import DATA_DIR, TMP_DIR, U16_LEVELS
from diagnostics_app.core.store.connection import DEFAULT_BUSY_TIMEOUT, INDEX_NAME
from diagnostics_app.core.store.facade import FeatureStore
from diagnostics_app.core.store.jobs import FINISHED_JOBS_PER_KEY
from diagnostics_app.core.store.lease import LEASE_SECONDS
from diagnostics_app.core.store.owners import (
    place_host,
    process_alive,
    process_start_token,
    this_place,
)
from diagnostics_app.core.store.provenance import (
    PROVENANCE_KEYS,
    current_provenance,
    provenance_text,
)
from diagnostics_app.core.store.records import (
    EntryImport,
    EntryKey,
    JobRecord,
    LoadedFeature,
    PreviousVersion,
    SplicePart,
    StoredEntry,
    StoredFeature,
    StoreVersion,
    TrashItem,
    canonical_params,
    meta_from_json,
    meta_to_json,
)
from diagnostics_app.core.store.schema import SCHEMA_VERSION
from diagnostics_app.core.store.splicing import StaleBase
from diagnostics_app.core.store.trash import TRASH_MAX_AGE
from diagnostics_app.core.store.writing import PassWriter

__all__ = [
    "DATA_DIR",
    "DEFAULT_BUSY_TIMEOUT",
    "FINISHED_JOBS_PER_KEY",
    "INDEX_NAME",
    "LEASE_SECONDS",
    "PROVENANCE_KEYS",
    "SCHEMA_VERSION",
    "TMP_DIR",
    "TRASH_MAX_AGE",
    "U16_LEVELS",
    "EntryImport",
    "EntryKey",
    "FeatureStore",
    "JobRecord",
    "LoadedFeature",
    "PassWriter",
    "PreviousVersion",
    "SplicePart",
    "StaleBase",
    "StoreVersion",
    "StoredEntry",
    "StoredFeature",
    "TrashItem",
    "canonical_params",
    "current_provenance",
    "meta_from_json",
    "meta_to_json",
    "place_host",
    "process_alive",
    "process_start_token",
    "provenance_text",
    "this_place",
]
