"""Standardizing SQL models (bronze → typed staging) and the dialect layer."""

from govlake.transform._dialect import DUCKDB, SPARK, Dialect, dialect
from govlake.transform._staging import StagingRenderer, multi_normalized, tokens_of

__all__ = ["DUCKDB", "SPARK", "Dialect", "StagingRenderer", "dialect", "multi_normalized", "tokens_of"]
