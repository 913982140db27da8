"""Run a CRM stand-in from the repo root, for the README recipes::

    python -m tests.connectors.servers hubspot --port 8091
    python -m tests.connectors.servers salesforce --port 8092
    python -m tests.connectors.servers rest --port 8093

It prints the base URL and the credentials to use, then serves until Ctrl-C. By default
the HubSpot portal and the Salesforce org are new (``--provisioned``: already set up for
wa-bridge), so ``wa-bridge crm setup`` has work to do, as with a real account. Contract
violations are printed as they happen.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from .base import ContractServer
from .hubspot import HubSpotServer
from .rest_crm import RestCrmServer
from .salesforce import SalesforceServer


def _describe(server: ContractServer) -> list[str]:
    lines = [f"{server.vendor} stand-in at {server.url}"]
    if isinstance(server, HubSpotServer):
        app = server.oauth
        lines += [
            f"  WA_BRIDGE_CRM_BASE_URL={server.url}",
            f"  private-app token:  {server.token}",
            f"  OAuth app:          client_id={app.client_id} client_secret={app.client_secret}",
            f"  OAuth refresh token: {app.refresh_token} (token URL {server.url}/oauth/v1/token)",
        ]
    elif isinstance(server, SalesforceServer):
        org = server.oauth
        lines += [
            f"  login URL (token endpoint {server.url}/services/oauth2/token): {server.url}",
            f"  connected app:      client_id={org.client_id} client_secret={org.client_secret}",
            f"  JWT bearer user:    {org.username} (sign with the key printed by --print-key)",
            f"  static session token: {server.token}",
        ]
    else:
        lines.append(f"  WA_BRIDGE_CRM_BASE_URL={server.url}  token: {server.token}")
    return lines


def build(vendor: str, *, provisioned: bool) -> ContractServer:
    if vendor == "hubspot":
        hubspot = HubSpotServer()
        hubspot.strict_properties = not provisioned
        return hubspot
    if vendor == "salesforce":
        salesforce = SalesforceServer()
        salesforce.strict_fields = not provisioned
        return salesforce
    return RestCrmServer()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.connectors.servers")
    parser.add_argument("vendor", choices=("hubspot", "salesforce", "rest"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--provisioned", action="store_true", help="the account is already set up for wa-bridge"
    )
    parser.add_argument(
        "--print-key",
        action="store_true",
        help="Salesforce: print the private key the connected app trusts (JWT bearer flow)",
    )
    args = parser.parse_args(argv)
    server = build(args.vendor, provisioned=args.provisioned)
    server.start(host=args.host, port=args.port)
    for line in _describe(server):
        print(line, flush=True)
    if args.print_key and isinstance(server, SalesforceServer):
        print(server.oauth.private_key_pem, flush=True)
    stop = threading.Event()
    seen = 0
    try:
        while not stop.wait(0.5):
            bad = server.violations
            for request in bad[seen:]:
                print(
                    f"VIOLATION {request.method} {request.path}: {request.violations}", flush=True
                )
            seen = len(bad)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
