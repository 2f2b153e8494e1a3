"""Real coding agents driven offline: fake model APIs and run helpers, shared by the tests."""
