"""The SQL models: one runner for every model under sql/, the ymls beside the published models
(docs, key tests, unit tests), the standardizing model's column SQL, and the dialect layer (the only
place that knows how the engines' SQL differs)."""

from govlake.transform._dialect import DUCKDB, SPARK, SPARK_CONF, Dialect, dialect, to_spark
from govlake.transform._models import (
    ModelError,
    ModelHeader,
    ModelRunner,
    Rendered,
    check_keys,
    model_header,
    model_inputs,
    referenced_columns,
    referenced_relations,
)
from govlake.transform._specs import ColumnSpec, ModelSpec, Spec, SpecError, UnitTest, load_specs
from govlake.transform._staging import FULL_WIDTH, HALF_WIDTH, StagingRenderer, multi_normalized, tokens_of
from govlake.transform._units import output_columns, run_unit_test

__all__ = ["DUCKDB", "FULL_WIDTH", "HALF_WIDTH", "SPARK", "SPARK_CONF", "ColumnSpec", "Dialect", "ModelError",
           "ModelHeader", "ModelRunner", "ModelSpec", "Rendered", "Spec", "SpecError", "StagingRenderer", "UnitTest",
           "check_keys", "dialect", "load_specs", "model_header", "model_inputs", "multi_normalized", "output_columns",
           "referenced_columns", "referenced_relations", "run_unit_test", "to_spark", "tokens_of"]
