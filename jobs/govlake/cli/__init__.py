"""The ``govlake`` command line: a thin layer over the package's public functions.

One module per command group, each registering its commands on the app of ``_main``:
``_generate`` (generate), ``_pipeline`` (ingest, run, status), ``_batches`` (batches), ``_returns`` (return),
``_alerts`` (alerts …), ``_report`` (kpi, report, rules), ``_open`` (open), ``_themes`` (themes …),
``_catalog`` (catalog …), ``_objections`` (objection …), ``_credit`` (credit …), ``_backup`` (backup, restore,
drill, vacuum). Each
command builds one ``RunContext`` (settings, run id, business date, output mode) and passes it down; ``--json``
on every command; progress on a terminal only (``_progress``). Exit codes: 0 success, 1 error, 2 bad usage or settings,
3 completed with batches held (open: with datasets withheld).
"""

from govlake.cli._context import RunContext
from govlake.cli._main import ERROR, HELD, HELD_EXIT, OK, USAGE, app, main

# Importing a module registers its commands; this order is the order of `govlake --help`.
# isort: off
from govlake.cli import (_generate, _pipeline, _batches, _returns, _alerts, _report, _open,  # noqa: F401
                         _themes, _catalog, _objections, _credit, _backup)
# isort: on

__all__ = ["ERROR", "HELD", "HELD_EXIT", "OK", "USAGE", "RunContext", "app", "main"]
