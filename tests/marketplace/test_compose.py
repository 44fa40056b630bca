"""docker-compose.yml is for users' machines; here it is checked by parsing."""

from pathlib import Path

import yaml
from django.conf import settings

COMPOSE = Path(settings.BASE_DIR) / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_services_with_health_checks():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in services[name], name


def test_web_worker_and_beat_share_one_image_database_and_broker():
    services = _compose()["services"]
    apps = [services[n] for n in ("web", "worker", "beat")]

    def env_of(svc):
        env = svc.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        anchors = svc.get("env_file")
        return env, anchors

    envs = [env_of(s)[0] for s in apps]
    assert len({e["DATABASE_URL"] for e in envs}) == 1
    assert len({e["REDIS_URL"] for e in envs}) == 1
    assert "postgres" in envs[0]["DATABASE_URL"] and "redis://redis" in envs[0]["REDIS_URL"]
    assert len({s.get("image") or str(s.get("build")) for s in apps}) == 1
    assert "gunicorn" in " ".join(apps[0]["command"])
    assert "worker" in " ".join(apps[1]["command"]) and "beat" in " ".join(apps[2]["command"])
    for svc in apps:
        deps = svc["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"


def test_compose_runs_a_worker_for_each_celery_queue():
    """Payments have a queue of their own (``CELERY_TASK_ROUTES``) and a worker consuming only
    it; the other worker consumes the default queue: together, every queue the settings list."""
    services = _compose()["services"]
    queues = {}
    for name in ("worker", "payments-worker"):
        cmd = services[name]["command"]
        assert cmd[:4] == ["celery", "-A", "marketplace", "worker"], name
        queues[name] = set(cmd[cmd.index("-Q") + 1].split(","))
    assert queues == {"worker": {"celery"}, "payments-worker": {settings.PAYMENTS_QUEUE}}
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == set().union(*queues.values())
    assert services["payments-worker"]["depends_on"] == services["worker"]["depends_on"]


def test_compose_declares_named_volumes_it_uses():
    compose = _compose()
    declared = set(compose.get("volumes", {}))
    used = set()
    for svc in compose["services"].values():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used and used <= declared


def test_compose_requires_every_stripe_secret_from_the_environment():
    """``${VAR:?message}``: compose refuses to start instead of passing an empty secret, with
    which no webhook could ever verify (and production would refuse to start anyway)."""
    import re

    from marketplace.settings.stripe_secrets import NAMES

    services = _compose()["services"]
    for svc in ("web", "worker", "beat", "migrate"):
        env = services[svc]["environment"]
        for name in NAMES:
            value = str(env.get(name, ""))
            assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value), (svc, name, value)


def test_the_images_collectstatic_step_writes_the_manifest_production_serves(tmp_path):
    """Production's static storage reads ``staticfiles.json``; the Dockerfile's build step must
    write it (it runs under the local settings, so it has to ask for the manifest storage)."""
    import os
    import re
    import subprocess
    import sys

    dockerfile = (Path(settings.BASE_DIR) / "Dockerfile").read_text()
    step = re.search(r"RUN ([^\n]*(?:\\\n[^\n]*)*collectstatic[^\n]*)", dockerfile)
    assert step, "the Dockerfile collects static files at build time"
    assigned = dict(re.findall(r"\b([A-Z_]+)=(\S+)", step.group(1)))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(assigned)
    env.update(STATIC_ROOT=str(tmp_path / "static"), LOCAL_SECRETS_FILE=str(tmp_path / "s.json"))
    env.pop("DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        timeout=300,
    )
    manifest = tmp_path / "static" / "staticfiles.json"
    assert manifest.exists()
    assert "css/app.css" in manifest.read_text()
