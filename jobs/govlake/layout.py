"""Where gold keeps each table: two libraries and its logs, one folder each, placed by the table's name.

``gold/base/`` holds the base libraries the gold step builds (法人库 ``legal_entity``, 人口库 ``population``,
一人一档 ``person_profile``) and what it keeps for them (``penalty_subjects``), ``gold/theme/`` every theme
library's tables (the credit theme's 双公示 and credit tables, and each theme declared in ``catalog/themes.yml``:
govlake.themes), and ``gold/`` itself the logs (``withdrawal_log``, ``conflicts``). The lowest module of the
package: ``Settings.table_path(settings, "gold", name)`` resolves through it.
"""

from __future__ import annotations

LAYERS = ("bronze", "silver", "quarantine", "gold/base", "gold/theme", "gold", "meta")
"""The lake's layers, one folder each (gold/base and gold/theme inside gold)."""
BASE = "gold/base"
THEME = "gold/theme"
BASE_TABLES = ("legal_entity", "population", "person_profile")
"""The base libraries (基础库): 法人库, 人口库 and 一人一档, built by the gold step."""
BASE_STATE = ("penalty_subjects",)
"""What the gold step keeps beside the base libraries from run to run (govlake.gold: silver's penalties summed)."""
GOLD_LOGS = ("withdrawal_log", "conflicts")


def gold_layer(name: str) -> str:
    """Where gold table ``name`` lives: ``gold/base`` (a base library), ``gold`` (a log) or ``gold/theme``
    (every other gold table belongs to a theme library)."""
    if name in BASE_TABLES or name in BASE_STATE:
        return BASE
    return "gold" if name in GOLD_LOGS else THEME


def gold_path(name: str) -> str:
    """The lake-relative path of gold table ``name``: ``gold/base/legal_entity``, ``gold/theme/penalty_record``."""
    return f"{gold_layer(name)}/{name}"
