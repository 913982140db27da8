"""One settings tree, read from the environment (prefix ``WA_BRIDGE_``) and ``.env``.

Precedence (first wins): explicit init values; environment variables; for secrets,
``WA_BRIDGE_<NAME>_FILE`` naming a file that holds the value (as Docker and Kubernetes
mount secrets; setting both ``<NAME>`` and ``<NAME>_FILE`` is an error); the ``.env``
file; files in the directory ``WA_BRIDGE_SECRETS_DIR`` named after the variable
(``wa_bridge_app_secrets`` or ``WA_BRIDGE_APP_SECRETS``); defaults. Secrets are
``SecretStr`` and never printed. A bad value stops start-up with one line naming the
variable: see :func:`load_settings`.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from wa_bridge.errors import ConfigError

__all__ = [
    "DEFAULT_KAFKA_LINGER_MS",
    "SECRETS_DIR_VAR",
    "Settings",
    "load_settings",
    "secret_field_names",
]

ENV_PREFIX = "WA_BRIDGE_"
# The directory of secret files (a Docker or Kubernetes secret mount); unset: none.
SECRETS_DIR_VAR: Final = ENV_PREFIX + "SECRETS_DIR"
_FILE_SUFFIX: Final = "_FILE"
# The producers' linger (ms): the setting's default and the publishers' own.
DEFAULT_KAFKA_LINGER_MS: Final = 0.5
# Not SecretStr (the store parses it), but it usually carries a password.
_ALSO_SECRET: Final = frozenset({"database_url"})


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _kept_days(default: int, description: str, *, at_least: int = 0) -> Any:
    """A retention period in days: how long the worker's purge keeps a kind of row."""
    return Field(default=default, ge=at_least, description=description)


def _unset(description: str) -> Any:
    """A setting that is None unless given: what unset means is in ``description``."""
    return Field(default=None, description=description)


def _every_s(default: float, description: str) -> Any:
    """How often a worker's periodic task runs, in seconds; 0 turns the task off."""
    return Field(default=default, ge=0, description=description)


KeywordKind = Literal["stop", "start"]
# STOP-style keywords by language (a message that is exactly one changes consent).
_CONSENT_KEYWORDS: Final[dict[str, dict[KeywordKind, list[str]]]] = {
    "en": {"stop": ["stop", "unsubscribe"], "start": ["start", "subscribe"]},
    "es": {"stop": ["baja", "parar", "alto"], "start": ["alta", "suscribir"]},
    "pt": {"stop": ["sair", "parar", "cancelar"], "start": ["voltar", "assinar"]},
}


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
    max_json_depth: int = Field(
        default=64,
        ge=16,
        le=200,
        description="Webhook bodies nested deeper are refused (400 too_deep); Meta's are ~10.",
    )
    publish_timeout_s: float = Field(default=5.0, gt=0)
    phone_number_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="phone_number_ids this deployment serves; empty serves all.",
    )

    # --- bus ------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "wa.events"
    kafka_partitions: int = Field(default=12, gt=0)
    kafka_replication_factor: int | None = Field(
        default=None,
        gt=0,
        description="Replication factor of topics wa-bridge creates; unset: the number of "
        "brokers, at most 3.",
    )
    kafka_enable_idempotence: bool = True
    kafka_linger_ms: float = Field(
        default=DEFAULT_KAFKA_LINGER_MS,
        ge=0,
        description="How long a producer waits for more records before sending a batch "
        "(milliseconds; fractions allowed). The receiver answers Meta only after the "
        "acknowledgement, so this is latency on every webhook (bench/README.md: 0.5 ms "
        "beats 0, 0.25, 1, 2 and 10 for the receiver).",
    )
    kafka_client: Literal["confluent", "aiokafka"] = Field(
        default="confluent",
        description="The receiver's producer: librdkafka through confluent-kafka (batches "
        "in C, the faster) or aiokafka (pure Python). Every other client is aiokafka.",
    )
    consumer_group: str = "wa-bridge"
    consumer_fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        description="How long a fetch may wait for data. Kafka answers as soon as data "
        "arrives; Tansu holds the fetch this long, so `wa-bridge dev` lowers it.",
    )

    # --- bus: durability and security (see wa_bridge.bus.security, bus.admin) ----------
    kafka_min_insync_replicas: int | None = Field(
        default=None,
        gt=0,
        description="min.insync.replicas of topics wa-bridge creates; unset: 2 when the "
        "replication factor is 2 or more, else the broker's default.",
    )
    kafka_durability_check: Literal["enforce", "warn"] = Field(
        default="enforce",
        description="On a multi-broker cluster the receiver refuses a topic on which "
        "acks=all may mean one copy; 'warn' logs it instead.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_ca_file: Path | None = _unset(
        "PEM CA bundle for the brokers' certificates; unset: system CAs."
    )
    kafka_ssl_cert_file: Path | None = _unset("PEM client certificate (mutual TLS).")
    kafka_ssl_key_file: Path | None = _unset("PEM private key of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = (
        "PLAIN"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_oauth_token_url: str | None = _unset(
        "OAUTHBEARER: OAuth 2 token endpoint (client credentials)."
    )
    kafka_oauth_client_id: str | None = None
    kafka_oauth_client_secret: SecretStr | None = None
    kafka_oauth_scope: str | None = None
    kafka_oauth_extensions: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="OAUTHBEARER SASL extensions as key=value, comma-separated (Confluent "
        "Cloud: logicalCluster=lkc-...,identityPoolId=pool-...).",
    )
    kafka_oauth_token_file: Path | None = _unset(
        "OAUTHBEARER: a file holding a token that something else keeps fresh."
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

    # --- sales (deals / opportunities; the mapping's upsert_deal) ----------------------
    crm_deals: bool | None = _unset(
        "Write the mapping's deals (a converted case with a value, an order): "
        "HubSpot deals, Salesforce Opportunities, the SQL CRM's crm_deals. Unset: on for "
        "the SQL CRM only; the REST contract has no deals."
    )
    crm_deal_pipeline: str = Field(
        default="default",
        description="HubSpot: the deals pipeline (its internal id) new deals go into.",
    )
    crm_deal_stages: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="A deal's stage in the CRM for each wa-bridge stage, as "
        "open:<stage>,won:<stage>,lost:<stage>; unset: HubSpot's default pipeline "
        "(appointmentscheduled, closedwon, closedlost) or Salesforce's (Prospecting, "
        "Closed Won, Closed Lost).",
    )

    # --- CRM sign-in (see wa_bridge.connectors.auth) ---------------------------------
    crm_auth: Literal["token", "refresh_token", "client_credentials", "jwt_bearer"] = Field(
        default="token",
        description="How to sign in: a static bearer token (CRM_TOKEN); OAuth 2.0 with a "
        "refresh token (HubSpot apps); client credentials or a JWT bearer assertion "
        "(Salesforce connected apps).",
    )
    crm_login_url: str | None = _unset(
        "OAuth token endpoint's site: Salesforce's login URL "
        "(https://login.salesforce.com, https://test.salesforce.com or My Domain); "
        "HubSpot: CRM_BASE_URL when unset."
    )
    crm_client_id: str | None = _unset("OAuth client id (Salesforce: the consumer key).")
    crm_client_secret: SecretStr | None = None
    crm_refresh_token: SecretStr | None = None
    crm_jwt_private_key: SecretStr | None = _unset(
        "PEM private key that signs JWT bearer assertions (RS256); usually "
        "WA_BRIDGE_CRM_JWT_PRIVATE_KEY_FILE."
    )
    crm_username: str | None = _unset(
        "The CRM user wa-bridge acts as: the JWT bearer subject; Salesforce "
        "setup assigns its permission set to this user."
    )

    # --- CRM quota (see wa_bridge.connectors.gate) -----------------------------------
    crm_daily_reset_tz: str = Field(
        default="UTC",
        description="Time zone whose midnight resets the CRM's daily API budget (HubSpot: "
        "the account's time zone).",
    )
    crm_quota_key: str | None = _unset(
        "Names the CRM instance whose quota workers share in the state "
        "database; unset: the connector and the CRM's host (and OAuth client or user)."
    )
    crm_quota_refresh_s: float = Field(
        default=0.0,
        ge=0,
        description="How stale a worker's view of the shared quota may be. 0: read it (one "
        "indexed row) before each CRM request, so a Retry-After one worker got binds the "
        "others at once.",
    )
    crm_quota_probe_s: float = Field(
        default=300.0,
        gt=0,
        description="When a spent daily budget has no known reset time (Salesforce's "
        "rolling 24 hours), try again this often.",
    )

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
        "1000 for HTTP CRMs, where bigger batches mean fewer requests.",
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
    dead_letter_retention_days: int = _kept_days(
        90, "Replayed/discarded dead letters are kept this long.", at_least=1
    )
    retention_interval_s: float = _every_s(3600.0, "How often the worker purges; 0 turns it off.")
    open_dead_letter_retention_days: int = _kept_days(
        0, "Open dead letters older than this are deleted; 0 keeps them."
    )
    note_body_retention_days: int = _kept_days(
        0,
        "Built-in SQL CRM: note bodies (message text) older than this are blanked "
        "(the note stays); 0 keeps them.",
    )
    status_history_retention_days: int = _kept_days(
        0, "Message delivery states older than this are forgotten."
    )
    identity_event_retention_days: int = _kept_days(
        0, "Identity decisions (identity_events) kept this long."
    )
    audit_retention_days: int = _kept_days(0, "Audit log rows kept this long; 0 keeps them.")
    trace_retention_days: int = _kept_days(30, "Per-event traces (wa-bridge trace) kept this long.")
    replay_max_failures: int = Field(
        default=3,
        ge=1,
        description="Loop guard: a dead letter replayed this many times without success is "
        "left out of bulk replays (replay it by id to try again).",
    )

    # --- conversations (cases; wa_bridge.worker.conversations) ---------------------------
    conversation_window_s: float = Field(
        default=86400.0,
        gt=0,
        description="A case lapses (closes) this long after the customer's last message, "
        "and their next message opens a new one; 24 h is WhatsApp's customer-service window.",
    )
    conversation_sweep_interval_s: float = _every_s(
        300.0,
        "How often a worker looks for open cases whose window has lapsed and "
        "closes them (through the bus, in order with the contact's events); 0 turns it off.",
    )

    # --- consent ledger (wa_bridge.worker.consent) ---------------------------------------
    consent_keywords: dict[str, dict[KeywordKind, list[str]]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in _CONSENT_KEYWORDS.items()},
        description="Per language, the inbound texts (the whole message, any case or "
        "accent, trailing punctuation ignored) that opt the customer out of (stop) or back "
        "into (start) marketing messages, as JSON; {} turns keyword handling off. Echoes "
        "and the business's own messages never count.",
    )

    # --- monitoring and alerts (the worker's monitor task) ------------------------------
    monitor_interval_s: float = _every_s(
        15.0,
        "How often a worker samples lag, dead letters and account signals, "
        "writes its heartbeat and evaluates the built-in alerts; 0 turns it off.",
    )
    alert_rules_path: str | None = _unset("Built-in alert rules (YAML); unset: the shipped rules.")
    alert_webhook_url: SecretStr | None = _unset(
        "Where the worker posts built-in alerts (a Slack-compatible incoming "
        "webhook); unset: alerts are only logged and shown in the console."
    )

    # --- ops ------------------------------------------------------------------------
    admin_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Tokens as role:token, comma-separated. Roles: viewer, operator (admin API) and "
            "inbox (may only POST /inbox/events)."
        ),
    )
    inbox_signing_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="For an inbox that cannot hold a bearer token: secrets, comma-separated "
        "(several so one can rotate), any of which may sign POST /inbox/events with "
        "X-Inbox-Signature-256: sha256=<hex HMAC-SHA256 of the body>.",
    )
    console_session_secret: SecretStr | None = _unset(
        "Key that signs console sign-in cookies; unset: a random key per "
        "process (sign-ins end at restart; set it when several receivers serve /admin)."
    )
    console_session_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    console_secure_cookie: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="The Secure flag on the console cookie: auto sets it on HTTPS requests.",
    )
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """First wins: init, environment, ``*_FILE`` variables, ``.env``, secrets dir."""
        sources = [init_settings, env_settings, _FileVariablesSource(settings_cls), dotenv_settings]
        secrets_dir = os.environ.get(SECRETS_DIR_VAR)
        if secrets_dir:
            if not Path(secrets_dir).is_dir():
                raise ConfigError(f"{SECRETS_DIR_VAR}: {secrets_dir} is not a directory")
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        return tuple(sources)

    @field_validator(
        "app_secrets",
        "phone_number_ids",
        "admin_tokens",
        "kafka_oauth_extensions",
        "inbox_signing_secrets",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("crm_deal_stages", mode="before")
    @classmethod
    def _stages(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        out: dict[str, str] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            name, sep, stage = str(part).partition(":")
            if not sep or name.strip() not in ("open", "won", "lost") or not stage.strip():
                raise ValueError(f"{part!r}: expected open|won|lost:<CRM stage>")
            out[name.strip()] = stage.strip()
        return out

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _csv_floats(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("crm_daily_reset_tz")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, America/Bogota)") from exc
        return value


def _holds_secret(annotation: object) -> bool:
    if annotation is SecretStr:
        return True
    return any(_holds_secret(arg) for arg in typing.get_args(annotation))


def secret_field_names() -> list[str]:
    """Settings that may come from ``WA_BRIDGE_<NAME>_FILE``: every secret, and the
    database URL (it usually carries a password)."""
    return [
        name
        for name, info in Settings.model_fields.items()
        if name in _ALSO_SECRET or _holds_secret(info.annotation)
    ]


class _FileVariablesSource(PydanticBaseSettingsSource):
    """``WA_BRIDGE_<NAME>_FILE=/run/secrets/x``: the value of ``<NAME>`` is that file's
    content, surrounding whitespace dropped. Only for :func:`secret_field_names`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = ENV_PREFIX + field_name.upper()
        path = os.environ.get(variable + _FILE_SUFFIX)
        if not path:
            return None, field_name, False
        if os.environ.get(variable):
            raise ConfigError(
                f"{variable} and {variable}{_FILE_SUFFIX} are both set: keep one of them"
            )
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{variable}{_FILE_SUFFIX}: cannot read {path}: {reason}") from exc
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in secret_field_names():
            value, _, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                found[name] = value
        return found

    def __repr__(self) -> str:
        return "_FileVariablesSource(WA_BRIDGE_<NAME>_FILE)"


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
