"""deploy/compose.yaml, checked statically (no Docker here): services, wiring, secrets."""

from __future__ import annotations

from typing import Any

from wa_bridge.settings import secret_field_names

from ._files import DEPLOY, ROOT, compose, load

WA_BRIDGE_SERVICES = {"migrate", "receiver-1", "receiver-2", "worker"}


def services() -> dict[str, Any]:
    return dict(compose()["services"])


def command(name: str) -> list[str]:
    return list(services()[name]["command"])


def test_every_service_is_named() -> None:
    assert set(services()) == {
        "kafka",
        "postgres",
        "migrate",
        "receiver-1",
        "receiver-2",
        "worker",
        "prometheus",
        "grafana",
    }


def test_two_receivers_and_three_workers() -> None:
    receivers = [n for n in services() if n.startswith("receiver-")]
    assert len(receivers) == 2
    for name in receivers:
        assert command(name)[:2] == ["wa-bridge", "receiver"]
    assert command("worker")[:2] == ["wa-bridge", "worker"]
    assert services()["worker"]["deploy"]["replicas"] == 3
    published = [services()[n]["ports"][0] for n in receivers]
    assert len(set(published)) == 2


def test_kafka_runs_in_kraft_mode() -> None:
    env = services()["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env
    assert not any("ZOOKEEPER" in key for key in env)
    assert "zookeeper" not in services()


def test_migrations_run_once_before_receivers_and_workers() -> None:
    assert command("migrate") == ["wa-bridge", "db", "upgrade"]
    assert services()["migrate"]["restart"] == "no"
    for name in ("receiver-1", "receiver-2", "worker"):
        depends = services()[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["kafka"] == {"condition": "service_healthy"}
    assert services()["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_secrets_are_files_never_values() -> None:
    declared = set(compose()["secrets"])
    secret_vars = {f"WA_BRIDGE_{name.upper()}" for name in secret_field_names()}
    for name in WA_BRIDGE_SERVICES:
        service = services()[name]
        env = service["environment"]
        assert not secret_vars & set(env), f"{name} has a secret as a plain value"
        for key, value in env.items():
            if key.endswith("_FILE"):
                assert key.removesuffix("_FILE") in secret_vars
                mounted = value.removeprefix("/run/secrets/")
                assert mounted in service["secrets"] and mounted in declared
    for secret in compose()["secrets"].values():
        assert secret["file"].startswith("./secrets/")


def test_containers_are_locked_down() -> None:
    for name in WA_BRIDGE_SERVICES:
        service = services()[name]
        assert service["read_only"] is True
        assert "no-new-privileges:true" in service["security_opt"]


def test_mounted_config_files_exist() -> None:
    for name in ("prometheus", "grafana"):
        for volume in services()[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"
    assert (ROOT / "Dockerfile").is_file()
    assert (DEPLOY / services()["worker"]["build"]["context"]).resolve() == ROOT


def test_prometheus_scrapes_every_wa_bridge_process() -> None:
    config = load(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    receivers = jobs["wa-bridge-receiver"]["static_configs"][0]["targets"]
    assert sorted(receivers) == ["receiver-1:8080", "receiver-2:8080"]
    (worker_sd,) = jobs["wa-bridge-worker"]["dns_sd_configs"]
    assert worker_sd["names"] == ["worker"]
    assert (
        str(worker_sd["port"]) == command("worker")[command("worker").index("--metrics-port") + 1]
    )


def test_grafana_has_the_prometheus_datasource_and_a_dashboard_folder() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = load(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = load(provisioning / "dashboards" / "wa-bridge.yaml")["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (DEPLOY / "grafana" / "dashboards").is_dir()


def test_secrets_never_reach_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "deploy/secrets" in ignored
    assert (DEPLOY / "secrets" / ".gitignore").read_text().split("\n")[1:3] == ["*", "!.gitignore"]
