"""Every store we ship passes the conformance suite, unchanged.

The suite lives in :mod:`agent_continuity.testing.conformance`; the stores it
runs against are listed in ``conftest.STORE_FACTORIES``.
"""

from __future__ import annotations

from agent_continuity.testing.conformance import StoreConformance


class TestStoreConformance(StoreConformance):
    """The whole suite, once per store (the ``store_factory`` fixture is parametrised)."""
