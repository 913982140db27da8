"""Is a mapping written for the connector the worker is configured with?

Each connector reads the shared field names its own way (a HubSpot mapping's limits are
not Salesforce's), so a worker refuses, at start-up, a mapping whose ``connector:``
differs from ``WA_BRIDGE_CONNECTOR`` instead of dead-lettering events one by one later.
"""

from __future__ import annotations

from wa_bridge.mapping.engine import CompiledMapping
from wa_bridge.mapping.issues import MappingErrors, MappingIssue

__all__ = ["check_connector"]


def check_connector(mapping: CompiledMapping, configured: str) -> CompiledMapping:
    """``mapping`` itself when its ``connector`` is ``configured``.

    Raises MappingErrors (a ConfigError: the CLI exits 2) at the ``file:line:column`` of
    the ``connector:`` key that decides it (in the file of the ``extends`` chain that sets
    it), naming both connectors; a base mapping, which names none, is refused at its top.
    """
    if mapping.connector == configured:
        return mapping
    elsewhere = (
        f"point WA_BRIDGE_MAPPINGS_PATH at a mapping with connector: {configured} "
        f"(the shipped one is mappings/{configured}.yaml)"
    )
    if not mapping.connector or mapping.connector_loc is None:
        message = (
            "names no connector (a base mapping, meant to be extended), but "
            f"WA_BRIDGE_CONNECTOR is {configured!r}; {elsewhere}"
        )
        raise MappingErrors([MappingIssue(mapping.path, 1, 1, "connector", message)])
    message = (
        f"this mapping is for connector {mapping.connector!r}, but WA_BRIDGE_CONNECTOR is "
        f"{configured!r}; set WA_BRIDGE_CONNECTOR={mapping.connector} or {elsewhere}"
    )
    raise MappingErrors([MappingIssue.at(mapping.connector_loc, "connector", message)])
