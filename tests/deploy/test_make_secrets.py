"""deploy/make-secrets: random secrets for compose, the admin token only as its hash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pydantic import SecretStr

from wa_bridge.auth import TokenBook

from ._files import DEPLOY


def run(directory: Path) -> dict[str, str]:
    subprocess.run(["bash", str(directory / "make-secrets")], check=True, capture_output=True)
    secrets = directory / "secrets"
    return {p.name: p.read_text().strip() for p in secrets.iterdir() if p.is_file()}


def test_makes_every_compose_secret_and_keeps_them(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "make-secrets", tmp_path / "make-secrets")
    first = run(tmp_path)
    assert set(first) >= {
        "database_url",
        "postgres_password",
        "app_secret",
        "verify_token",
        "admin_tokens",
        "grafana_admin_password",
        "operator_token.txt",
    }
    assert f":{first['postgres_password']}@postgres:5432/" in first["database_url"]
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert run(tmp_path) == first  # a second run changes nothing


def test_only_the_hash_of_the_operator_token_is_mounted(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "make-secrets", tmp_path / "make-secrets")
    made = run(tmp_path)
    token = made["operator_token.txt"]
    assert made["admin_tokens"].startswith("operator:sha256:")
    assert token not in made["admin_tokens"]
    found = TokenBook([SecretStr(made["admin_tokens"])]).lookup(token)
    assert found is not None and found.role == "operator"
