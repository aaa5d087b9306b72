"""Fields (nn.Modules and their query wrappers): CSP fields, the UDF baseline, exact oracles."""

from deepcsp.fields.modules import CSPNet, FieldConfig, UDFNet, build_module
from deepcsp.fields.query import ExactField, Field, NeuralField, QueryResult, load_field, save_field

__all__ = [
    "CSPNet",
    "UDFNet",
    "FieldConfig",
    "build_module",
    "Field",
    "NeuralField",
    "ExactField",
    "QueryResult",
    "load_field",
    "save_field",
]
