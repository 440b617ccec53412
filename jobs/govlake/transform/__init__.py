"""The SQL models: one runner for every model under sql/, the standardizing model's column SQL,
and the dialect layer (the only place that knows how the engines' SQL differs)."""

from govlake.transform._dialect import DUCKDB, SPARK, SPARK_CONF, Dialect, dialect, to_spark
from govlake.transform._models import (
    ModelError,
    ModelHeader,
    ModelRunner,
    Rendered,
    check_keys,
    model_header,
    model_inputs,
    referenced_relations,
)
from govlake.transform._staging import FULL_WIDTH, HALF_WIDTH, StagingRenderer, multi_normalized, tokens_of

__all__ = ["DUCKDB", "Dialect", "FULL_WIDTH", "HALF_WIDTH", "ModelError", "ModelHeader", "ModelRunner", "Rendered",
           "SPARK", "SPARK_CONF", "StagingRenderer", "check_keys", "dialect", "model_header", "model_inputs",
           "multi_normalized", "referenced_relations", "to_spark", "tokens_of"]
