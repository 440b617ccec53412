"""Watching what a step asks of govlake.storage, without changing the answer."""

from __future__ import annotations

from govlake import storage


def file_changes_seen(monkeypatch, module) -> list:
    """What storage.file_changes returns to ``module`` (a step's module that imported govlake.storage) from now on,
    in order (None: the files could not be told)."""
    seen = []

    class Storage:   # the module's storage, its file_changes watched
        def __getattr__(self, name):
            return getattr(storage, name)

        def file_changes(self, path, since, until):
            seen.append(got := storage.file_changes(path, since, until))
            return got

    monkeypatch.setattr(module, "storage", Storage())
    return seen
