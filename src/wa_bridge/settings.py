"""One settings tree, read from the environment (prefix ``WA_BRIDGE_``) and ``.env``.

Precedence (first wins): explicit init values, environment variables, the ``.env`` file,
defaults. Secrets are ``SecretStr`` and never printed. A bad value stops start-up with one
line naming the variable: see :func:`load_settings`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wa_bridge.errors import ConfigError

__all__ = ["Settings", "load_settings"]

ENV_PREFIX = "WA_BRIDGE_"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of wa-bridge. Units are in the names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # --- receiver -------------------------------------------------------------------
    app_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Meta app secrets, comma-separated; several so a secret can rotate.",
    )
    verify_token: SecretStr = Field(
        default=SecretStr(""), description="Token Meta echoes in the GET handshake."
    )
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    publish_timeout_s: float = Field(default=5.0, gt=0)
    phone_number_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="phone_number_ids this deployment serves; empty serves all.",
    )

    # --- bus ------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "wa.events"
    kafka_partitions: int = Field(default=12, gt=0)
    kafka_replication_factor: int = Field(default=1, gt=0)
    kafka_enable_idempotence: bool = True
    kafka_linger_ms: int = Field(default=2, ge=0)
    consumer_group: str = "wa-bridge"
    consumer_fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        description="How long a fetch may wait for data. Kafka answers as soon as data "
        "arrives; Tansu holds the fetch this long, so `wa-bridge dev` lowers it.",
    )

    # --- state and CRM --------------------------------------------------------------
    database_url: str | None = None
    connector: Literal["sql", "rest", "hubspot", "salesforce"] = "sql"
    crm_base_url: str | None = None
    crm_token: SecretStr | None = None
    crm_timeout_s: float = Field(default=10.0, gt=0)
    hubspot_api_style: Literal["v3", "2026-03"] = Field(
        default="v3", description="HubSpot paths: /crm/v3/objects/ or /crm/objects/2026-03/."
    )
    hubspot_note_object: Literal["communications", "notes"] = "communications"
    salesforce_api_version: str = Field(default="v61.0", pattern=r"^v\d+\.\d$")
    mappings_path: str = "mappings/sql.yaml"

    # --- worker ---------------------------------------------------------------------
    retry_in_place_attempts: int = Field(default=3, ge=1)
    retry_delays_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 60.0, 600.0]
    )
    worker_batch_max: int = Field(
        default=2000,
        gt=0,
        description="Events per pipeline batch (one store transaction, across partitions).",
    )
    worker_linger_ms: int | None = Field(
        default=None,
        ge=0,
        description="How long ready events wait for more before their batch is applied "
        "(0: no wait). Default: 0 for the built-in SQL CRM, which has no request quota; "
        "200 for HTTP CRMs, where bigger batches mean fewer requests.",
    )
    worker_batches_in_flight: int = Field(
        default=2,
        ge=1,
        description="Batches applied at once; a partition is in at most one of them.",
    )
    worker_partition_cap: int = Field(
        default=4000,
        gt=0,
        description="Events fetched but not finished per partition; at the cap the "
        "partition's fetching pauses until half of them are finished.",
    )
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    dev_drain_timeout_s: float = Field(
        default=60.0,
        ge=0,
        description="On Ctrl-C, how long `wa-bridge dev` keeps applying what its in-memory "
        "broker holds before it exits (0: no drain).",
    )
    consumer_session_timeout_ms: int = Field(
        default=10000,
        ge=500,
        description="Kafka group session timeout; a group join waits about this long on Tansu.",
    )
    dedup_retention_days: int = Field(default=14, ge=8)
    dead_letter_retention_days: int = Field(
        default=90, ge=1, description="Replayed/discarded dead letters are kept this long."
    )
    retention_interval_s: float = Field(
        default=3600.0, ge=0, description="How often the worker purges; 0 turns it off."
    )

    # --- ops ------------------------------------------------------------------------
    admin_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Tokens as role:token, comma-separated. Roles: viewer, operator (admin API) and "
            "inbox (may only POST /inbox/events)."
        ),
    )
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("app_secrets", "phone_number_ids", "admin_tokens", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _csv_floats(cls, value: object) -> object:
        return _split_csv(value)


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise ConfigError with one line per bad value, naming its variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # overrides are validated
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"] if isinstance(p, str)).upper()
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from exc
