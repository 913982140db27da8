"""Declarative YAML field mappings: canonical events → validated CRM operations.

Pure (no I/O after loading). ``load_mapping`` reads and compiles a mapping file (with the
files it ``extends`` and ``include``s) once; ``CompiledMapping.apply`` maps one event,
raising only ``MappingOutputInvalid``.
"""

from wa_bridge.mapping.engine import CompiledMapping, load_mapping
from wa_bridge.mapping.issues import MappingErrors, MappingIssue

__all__ = ["CompiledMapping", "MappingErrors", "MappingIssue", "load_mapping"]
