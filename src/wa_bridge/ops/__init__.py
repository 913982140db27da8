"""Operations, on top of everything: the admin API and the documented app.

Only ``cli/`` imports this package (tests/test_layering.py). Its public modules:
"""

__all__ = [
    "admin",  # the admin API routes (dead letters, replay, discard), audited
    "backend",  # the admin API wired to the store and the replayer
    "openapi",  # the receiver + admin API as documented in openapi.yaml
]
