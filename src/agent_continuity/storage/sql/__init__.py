"""The shared SQL layer: a store on a database, whatever its dialect.

:class:`.store.SqlStore` and the modules beside it hold everything no
dialect changes (journal checks and marks, recovery points, leases,
documents, repair and quarantine, id allocation, the fenced append); the
dialects (:mod:`..sqlite`, :mod:`..postgres`) supply connecting, the write
transaction, upserts, the unsynced commit, error translation and migrations.
"""
