"""Comparison apps the receiver benchmark runs under uvicorn (one process each)."""
