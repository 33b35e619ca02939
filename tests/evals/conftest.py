"""Fixtures for the experiments' plumbing tests: `fast_embeddings` lives in tests/conftest.py."""
