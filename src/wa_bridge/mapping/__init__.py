"""Declarative YAML field mappings: canonical events → validated CRM operations.

Pure (no I/O after loading). ``load_mapping`` reads and compiles a mapping file (with the
files it ``extends`` and ``include``s) once; ``CompiledMapping.apply`` maps one event,
raising only ``MappingOutputInvalid``; ``check_connector`` refuses a mapping written for
another connector than the configured one.
"""

from wa_bridge.mapping.connector import check_connector
from wa_bridge.mapping.engine import CompiledMapping, load_mapping
from wa_bridge.mapping.issues import MappingErrors, MappingIssue

__all__ = ["CompiledMapping", "MappingErrors", "MappingIssue", "check_connector", "load_mapping"]
