"""Service configuration: a YAML file, then EUCGATE_* environment variables, then flags.

Validated once at start; an invalid setting stops the service with a message naming it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, cast

from eucgate_client.tlog import CheckpointError, NoteVerifier, WitnessVerifier
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from eucgate.errors import ConfigError

SAMPLE_BUNDLE = Path(__file__).resolve().parent / "policies" / "rare-earths-cn-in.yaml"


class VerificationKeySetting(BaseModel):
    """A receipt-verification key kept published after a rotation, with its period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_key_path: Path
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @model_validator(mode="after")
    def _period(self) -> VerificationKeySetting:
        for moment in (self.valid_from, self.valid_until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("valid_from and valid_until need a time zone (e.g. Z)")
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_from must be before valid_until")
        return self


class WitnessSetting(BaseModel):
    """One witness the log asks: its URL prefix and its pinned cosigner verifier key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    verifier_key: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a witness url is http:// or https://")
        return value

    @field_validator("verifier_key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            WitnessVerifier.parse(value)
        except CheckpointError as exc:
            raise ValueError(f"not a witness verifier key: {exc}") from None
        return value


class Settings(BaseSettings):
    """Everything the server needs; see docs in README.md ("Configuration")."""

    model_config = SettingsConfigDict(env_prefix="EUCGATE_", extra="forbid", frozen=True)

    listen: str = Field("127.0.0.1:50051", description="API address host:port; port 0 picks one")
    ops_listen: str = Field(
        "", description="plaintext grpc.health.v1 address for probes; empty disables it"
    )
    metrics_listen: str = Field(
        "", description="plain HTTP address for Prometheus metrics (/metrics); empty disables it"
    )
    data_dir: Path = Field(Path("var"), description="where the SQLite store lives")
    store: str = Field(
        "",
        description="the store: empty for the SQLite file in data_dir, or a postgresql:// URL "
        "that replicas share (keep a password out of files: use EUCGATE_STORE)",
    )
    store_pool_size: int = Field(
        10, ge=2, le=200, description="PostgreSQL connections this replica holds at most"
    )
    store_statement_timeout_ms: int = Field(
        5000, ge=100, le=600_000, description="PostgreSQL: bound on each statement and lock wait"
    )
    store_connect_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=120,
        description="PostgreSQL: bound on connecting and waiting for a connection",
    )
    init_store: bool = Field(
        False,
        description="create a new, empty store (a new log) when there is none; off, a "
        "missing or empty store stops the server instead of silently starting over",
    )
    bundle_path: Path = Field(
        Path("var/policy.dsse.json"),
        description="signed policy bundle: the DSSE envelope `eucgate policy sign` writes",
    )
    policy_admin_keys: list[Path] = Field(
        default_factory=list,
        description="PEM public keys (Ed25519, ECDSA P-256/P-384) whose signature on the "
        "bundle is accepted; read at start, so changing them needs a restart",
    )
    crl_dir: Path | None = Field(
        None,
        description="directory of CRLs (PEM or DER) read at start and on every reload; each "
        "is used only when a CA the bundle trusts signed it, the newest per issuer",
    )
    service_key_path: Path = Field(
        Path("var/service.key.pem"), description="Ed25519 PEM key that signs receipts"
    )
    log_origin: str = Field(
        "eucgate.example/log",
        description="the audit log's name: checkpoint origin line and signed-note key name",
    )
    log_key_path: Path | None = Field(
        None, description="Ed25519 PEM key that signs checkpoints; default the service key"
    )
    service_verification_keys: list[VerificationKeySetting] = Field(
        default_factory=list,
        description="earlier receipt keys still published after a rotation: each a "
        "public_key_path (PEM) with valid_from / valid_until; the active key "
        "(service_key_path) is always published",
    )
    log_verification_keys: list[str] = Field(
        default_factory=list,
        description="earlier log verifier keys (name+keyid+base64key, name = log_origin) "
        "still published after a rotation, so older checkpoints keep verifying",
    )
    witnesses: list[WitnessSetting] = Field(
        default_factory=list,
        description="witnesses (C2SP tlog-witness) the log asks to cosign its checkpoints: "
        "each a url (the add-checkpoint prefix) and its verifier_key",
    )
    witness_quorum: int = Field(
        0,
        ge=0,
        description="cosignatures a checkpoint needs to count as witnessed; 0 means all "
        "configured witnesses",
    )
    witness_interval_seconds: float = Field(
        0.2, gt=0, le=60, description="how often new checkpoints are sent to the witnesses"
    )
    tls_cert_path: Path | None = Field(
        None, description="the API port's certificate chain (PEM), server certificate first"
    )
    tls_key_path: Path | None = Field(None, description="the API port's private key (PEM)")
    access_path: Path | None = Field(
        None,
        description="the access file: client CAs by name and the client-certificate "
        "identities under them mapped to roles (see docs/access.md); with TLS, clients "
        "must present a certificate it maps (mTLS)",
    )
    insecure: bool = Field(
        False,
        description="plaintext API with every caller anonymous and allowed everything; for "
        "local use and the demo only, never in production",
    )
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # The model's field bounds fit 16 KiB; more is refused by the core anyway
    # (core.submission.MAX_ENVELOPE_BYTES, MAX_SIGNATURES).
    max_payload_bytes: int = Field(16 * 1024, ge=256, le=19 * 1024)
    max_signatures: int = Field(8, ge=1, le=8)
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="server processes sharing the API port (SO_REUSEPORT), each with its "
        "own gate, store connections and writer; one Python process uses about one core",
    )
    max_workers: int = Field(16, ge=1, le=256, description="threads for unary calls")
    max_concurrent_calls: int = Field(
        128,
        ge=1,
        le=100_000,
        description="unary calls waiting or running at once; one more is refused at once "
        "with RESOURCE_EXHAUSTED REQUEST_LOAD_SHED and retry advice",
    )
    stream_workers: int = Field(
        16,
        ge=1,
        le=256,
        description="threads for streaming calls (Replay, StreamEntries, Health/Watch, "
        "reflection), apart from the unary ones; also the bound on open streams",
    )
    max_streams_per_method: int = Field(
        12, ge=1, le=256, description="open streams of one method at once"
    )
    max_streams_per_caller: int = Field(
        4, ge=1, le=256, description="open streams of one caller (access-file name) at once"
    )
    readiness_probe_timeout_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="a store probe not answered within this turns readiness NOT_SERVING",
    )
    readiness_failure_window_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="readiness stays NOT_SERVING this long after a store commit failed with "
        "no commit since",
    )
    max_connection_age_seconds: int = Field(300, ge=10)
    grace_seconds: float = Field(10.0, ge=0, le=300)
    log_level: str = "info"
    log_json: bool = True

    @field_validator("listen", "ops_listen", "metrics_listen")
    @classmethod
    def _address(cls, value: str, info: Any) -> str:
        if value == "" and info.field_name in {"ops_listen", "metrics_listen"}:
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            # never echo the value: a URL may carry a password
            raise ValueError("must be empty (SQLite in data_dir) or a postgresql:// URL")
        return value

    @field_validator("log_origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        # A C2SP signed-note key name: non-empty, printable, no white space and no "+".
        if not value or not value.isprintable() or any(c.isspace() or c == "+" for c in value):
            raise ValueError("must be non-empty, printable, without spaces or '+'")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.max_concurrent_calls < self.max_workers:
            raise ValueError("max_concurrent_calls must be at least max_workers")
        for name in ("max_streams_per_method", "max_streams_per_caller"):
            if getattr(self, name) > self.stream_workers:
                raise ValueError(f"{name} must be at most stream_workers")
        return self

    @model_validator(mode="after")
    def _log_keys(self) -> Settings:
        for text in self.log_verification_keys:
            try:
                name = NoteVerifier.parse(text).name
            except CheckpointError as exc:
                raise ValueError(f"log_verification_keys: {exc}") from None
            if name != self.log_origin:
                raise ValueError(f"log_verification_keys: {name!r} is not log_origin")
        return self

    @model_validator(mode="after")
    def _witness_quorum(self) -> Settings:
        if self.witness_quorum > len(self.witnesses):
            raise ValueError("witness_quorum is more than the witnesses configured")
        if len({WitnessVerifier.parse(w.verifier_key).name for w in self.witnesses}) != len(
            self.witnesses
        ):
            raise ValueError("two witnesses share a name")
        return self

    @model_validator(mode="after")
    def _secure_unless_told(self) -> Settings:
        # Secure by default: the API is mTLS with mapped identities, or explicitly open.
        tls = (self.tls_cert_path, self.tls_key_path, self.access_path)
        if self.insecure:
            if any(path is not None for path in tls):
                raise ValueError(
                    "insecure serves plaintext to anonymous callers: drop it, or drop "
                    "tls_cert_path, tls_key_path and access_path"
                )
        elif any(path is None for path in tls):
            raise ValueError(
                "the API needs mutual TLS: set tls_cert_path, tls_key_path and access_path "
                "(see docs/access.md), or set insecure (plaintext, anonymous, every role) "
                "for local use only"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init) beat the environment, which beats the file.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build validated settings; raises ConfigError naming every bad setting."""
    cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        # The file is a class-level setting in pydantic-settings, hence a subclass per file.
        config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": config_file})
        cls = cast(type[Settings], type("FileSettings", (Settings,), {"model_config": config}))
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
