"""Test support importable by third parties: the Store conformance suite."""
