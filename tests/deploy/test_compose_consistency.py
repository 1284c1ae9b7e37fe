"""The Docker deployment agrees with the project: docker-compose.yaml, Dockerfile, .env.example, .dockerignore.

No Docker engine runs where the tests run, so the files are read as data: the compose file with PyYAML (anchors
and merge keys resolved as Compose resolves them), the Dockerfile and .dockerignore as text, and `${VAR}`
interpolation reproduced here with the values of .env.example. The one piece of executable logic in the compose
file, airflow-init's state-store set-up, is run for real against the test PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
LONG_RUNNING_AIRFLOW = AIRFLOW_SERVICES[1:]
SANDBOX_SERVICES = ("amazon-sandbox", "commerce-sandbox")
REQUIRED_SERVICES = ("postgres", "redis", *AIRFLOW_SERVICES, *SANDBOX_SERVICES)
ONE_SHOT_SERVICES = {"airflow-init", "sandbox-seed"}
LONG_RUNNING_RESTART = {"always", "unless-stopped", "on-failure"}
TASK_RUNNERS = ("airflow-worker", "airflow-triggerer")  # they need the integration's connections
CONNECTIONS = ("AIRFLOW_CONN_AMAZON_SP_API", "AIRFLOW_CONN_COMMERCE", "AIRFLOW_CONN_SALES_CHANNEL_DB")
SETTINGS_VARIABLE = "AIRFLOW_VAR_SALES_CHANNEL_SETTINGS"
# Switches the compose deployment deliberately replaces: the state store is the sales_channel_db connection,
# the settings are the Variable.
SWITCHES_NOT_IN_COMPOSE = {"SALES_CHANNEL_DB_URL", "SALES_CHANNEL_SETTINGS_FILE", "SALES_CHANNEL_PII_KEYS"}
PII_KEYS = "SALES_CHANNEL_PII_KEYS"  # a secret, only where tasks run (the page never reads buyer data)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|_KEY$|^AIRFLOW_CONN_")
PLACEHOLDER = "CHANGE_ME"

# Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ escapes.
REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}$")


# -- reading the files -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, args = pending.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def dockerfile_stages() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """{stage name: (what its FROM names, its instructions)}, in the file's order (`FROM image AS name`)."""
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(?P<base>\S+)\s+AS\s+(?P<name>\S+)", args, re.IGNORECASE)
            assert match, f"every stage is named, for compose's build targets: FROM {args}"
            stages[match["name"]] = (match["base"], [])
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[next(reversed(stages))][1].append((keyword, args))
    return stages


def stage_instructions(stage: str) -> list[tuple[str, str]]:
    """The instructions that make a target: its ancestors' (oldest first), then its own."""
    stages = dockerfile_stages()
    assert stage in stages, f"the Dockerfile has no stage {stage!r}"
    base, own = stages[stage]
    return (stage_instructions(base) if base in stages else []) + own


def dockerfile_copies(stage: str | None = None) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY of a target (of every stage when None), flags removed."""
    instructions = dockerfile_instructions() if stage is None else stage_instructions(stage)
    copies = []
    for keyword, args in instructions:
        if keyword in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            copies.append((parts[:-1], parts[-1]))
    return copies


def dockerfile_runs(stage: str = "production") -> list[str]:
    return [args for keyword, args in stage_instructions(stage) if keyword == "RUN"]


def copy_destination(source: str, stage: str = "production") -> str:
    """Where a target of the Dockerfile copies `source` (as written in the COPY)."""
    for sources, destination in dockerfile_copies(stage):
        if source in sources:
            return destination
    raise AssertionError(f"the Dockerfile's {stage} target does not COPY {source}")


def parse_env_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(set, commented-out) variables of a Compose .env file, values unquoted."""
    assigned: dict[str, str] = {}
    commented: dict[str, str] = {}
    pattern = re.compile(r"^(?P<hash>#\s*)?(?P<name>[A-Z_][A-Z0-9_]*)=(?P<value>.*)$")
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = pattern.match(raw.strip())
        if not match:
            continue
        value = match["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        (commented if match["hash"] else assigned)[match["name"]] = value
    return assigned, commented


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE)[0]


@pytest.fixture(scope="module")
def env_documented() -> set[str]:
    assigned, commented = parse_env_file(ENV_EXAMPLE)
    return set(assigned) | set(commented)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string."""

    def substitute(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise LookupError(f"{name}: {arg}")
        return current or ""

    return REF.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def container_env(service: dict, env: dict[str, str]) -> dict[str, str]:
    """The environment a container of this service gets, with .env (here: `env`) as Compose's environment."""
    result = {}
    for key, value in (service.get("environment") or {}).items():
        if value is None:  # pass-through: set in the container only when set in .env / the shell
            if key in env:
                result[key] = env[key]
        else:
            result[key] = interpolate(str(value), env)
    return result


def strings(node) -> list[str]:
    """Every string scalar (keys and values) of a parsed YAML document."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def lock_pin(path: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;]+)", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{path.name} does not pin {package}"
    return match[1]


# -- versions and image ------------------------------------------------------------------------------------------


def test_dockerfile_builds_from_the_pinned_airflow_and_python():
    airflow = lock_pin(ROOT / "requirements.txt", "apache-airflow")
    assert lock_pin(ROOT / "requirements.in", "apache-airflow") == airflow
    assert lock_pin(ROOT / "requirements.txt", "apache-airflow-core") == airflow
    python = re.search(r"--python-version (\d+\.\d+)", (ROOT / "requirements.txt").read_text())[1]
    stages = dockerfile_stages()
    images = [base for base, _ in stages.values() if base not in stages]
    assert images == [f"apache/airflow:{airflow}-python{python}"], images
    assert {"production", "sandboxes"} <= set(stages)
    assert list(stages)[-1] == "production", "a plain `docker build` (the last stage) must make the production image"


def test_dockerfile_installs_the_lock_and_the_package_without_runtime_pip():
    runs = " ; ".join(dockerfile_runs())
    lock = copy_destination("requirements.txt")
    assert re.search(rf"pip install [^;&]*-r {re.escape(lock)}", runs), "requirements.txt is not installed"
    assert re.search(r'pip install [^;&]*"apache-airflow==\$\{AIRFLOW_VERSION\}"', runs), "Airflow is not held"
    source = copy_destination("pyproject.toml").rstrip("/")
    assert re.search(rf"pip install [^;&]*--no-deps {re.escape(source)}", runs), "the package is not installed"
    assert copy_destination("include/").startswith(source + "/"), "include/ is not beside pyproject.toml"
    assert copy_destination("README.md").rstrip("/") == source, "pyproject.toml's readme must be in the build"
    for path in (DOCKERFILE, COMPOSE_FILE, ENV_EXAMPLE):
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in path.read_text(encoding="utf-8").replace(
            "never use _PIP_ADDITIONAL_REQUIREMENTS", ""
        ), path.name
    sandbox_lock = copy_destination("requirements.txt", "sandboxes")
    assert re.search(rf"pip install [^;&]*-r {re.escape(sandbox_lock)}", " ; ".join(dockerfile_runs("sandboxes")))


def test_the_production_image_holds_no_test_tool_and_no_sandbox():
    copied = {source.rstrip("/") for sources, _ in dockerfile_copies("production") for source in sources}
    kept_out = {"sandboxes", "reference", "tests", "requirements-dev.txt", "requirements-dev.in"}
    assert not copied & kept_out, f"the production image copies {sorted(copied & kept_out)}"
    assert {"sandboxes", "reference"} <= {s.rstrip("/") for ss, _ in dockerfile_copies("sandboxes") for s in ss}
    assert "requirements-dev" not in " ".join(args for _, args in dockerfile_instructions())
    # The build's own guard, run here: it names what it finds, and passes where none of them is importable.
    [guard] = [
        words[i + 1]
        for run in dockerfile_runs("production")
        for words in [shlex.split(run)]
        for i, word in enumerate(words[:-1])
        if word == "-c" and "find_spec" in words[i + 1]
    ]
    found = subprocess.run([sys.executable, "-c", guard], capture_output=True, text=True, timeout=60)
    assert found.returncode == 1 and "pytest" in found.stderr, found.stderr
    clean = subprocess.run([sys.executable, "-I", "-S", "-c", guard], capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr


def dockerignore_allows(path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins (`!` re-includes). Enough for our patterns."""
    allowed = True
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if pattern == "*" or pattern == path.rstrip("/") or path.startswith(pattern + "/"):
            allowed = negate
        elif pattern.startswith("**/") and re.fullmatch(
            pattern[3:].replace(".", r"\.").replace("*", "[^/]*"), path.rstrip("/").rsplit("/", 1)[-1]
        ):
            allowed = negate
    return allowed


def test_every_copied_path_exists_is_tracked_content_and_is_in_the_build_context():
    copies = dockerfile_copies()
    assert copies
    for sources, _destination in copies:
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"the Dockerfile copies {source}, which is not in the repository"
            if path.is_dir():
                # Git keeps no empty folder: a folder without files would be missing from a fresh clone.
                files = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                assert files, f"{source} holds no file: a fresh clone would not have it"
            assert dockerignore_allows(source), f".dockerignore keeps {source} out of the build context"


def test_dockerignore_keeps_secrets_and_local_state_out():
    for path in (
        ".env",
        ".venv",
        "var",
        ".git",
        "tests",
        "include/amazon_commerce_sync.egg-info",
        "dags/.env",
        "requirements-dev.txt",
    ):
        assert not dockerignore_allows(path), f"{path} would be sent to the Docker build"
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


# -- services ----------------------------------------------------------------------------------------------------


def test_every_service_of_the_deployment_exists(services):
    missing = set(REQUIRED_SERVICES) - set(services)
    assert not missing, f"docker-compose.yaml lacks {sorted(missing)}"


def test_airflow_services_share_the_common_environment(services):
    dags_folder = copy_destination("dags/").rstrip("/")
    example = parse_env_file(ENV_EXAMPLE)[0]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["image"] == services["airflow-scheduler"]["image"], name
        assert service.get("build") == {"context": ".", "target": "production"}, f"{name} is not the production image"
        env = container_env(service, example)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert (metadata.scheme, metadata.hostname, metadata.path) == ("postgresql+psycopg2", "postgres", "/airflow")
        assert metadata.password == example["POSTGRES_PASSWORD"], name
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert (backend.scheme, backend.hostname, backend.path) == ("db+postgresql", "postgres", "/airflow"), name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname) == ("redis", "redis"), name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == dags_folder, f"{name}: DAGS_FOLDER is not where dags/ is copied"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == copy_destination("plugins/").rstrip("/"), (
            f"{name}: PLUGINS_FOLDER is not where plugins/ (the Sales Channel page) is copied"
        )
        api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (api.hostname, api.port, api.path) == ("airflow-apiserver", 8080, "/execution/"), name
        for secret in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
            assert env.get(secret), f"{name} lacks {secret}"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "airflow"
    api_ports = services["airflow-apiserver"]["ports"]
    assert any(str(port).endswith(":8080") for port in api_ports)


def test_the_auth_manager_comes_from_a_provider_the_locks_pin(services, env_example):
    """The compose file's auth manager is a provider's class; the apache/airflow image happens to ship a FAB
    provider, but only a pin in requirements.in (and so in requirements.txt, which the image installs) makes it the
    tested version. The entrypoint's admin user (_AIRFLOW_WWW_USER_CREATE) is created with FAB's `airflow users`."""
    auth_manager = container_env(services["airflow-apiserver"], env_example)["AIRFLOW__CORE__AUTH_MANAGER"]
    provider_class = r"airflow\.providers\.(?P<provider>[a-z_.]+?)\.auth_manager\.[a-z_.]+\.[A-Za-z]+"
    match = re.fullmatch(provider_class, auth_manager)
    assert match, f"not a provider's auth manager: {auth_manager}"
    distribution = "apache-airflow-providers-" + match["provider"].replace(".", "-").replace("_", "-")
    pinned = lock_pin(ROOT / "requirements.in", distribution)
    assert lock_pin(ROOT / "requirements.txt", distribution) == pinned, "run `make lock`"
    for service in AIRFLOW_SERVICES:
        assert container_env(services[service], env_example)["AIRFLOW__CORE__AUTH_MANAGER"] == auth_manager, service
    init = container_env(services["airflow-init"], env_example)
    assert init["_AIRFLOW_WWW_USER_CREATE"] == "true" and match["provider"] == "fab"


def test_integration_connections_reach_the_task_runners_and_only_the_state_store_the_api_server(services, env_example):
    for name in (*TASK_RUNNERS, "airflow-init"):
        env = container_env(services[name], env_example)
        for key in (*CONNECTIONS, SETTINGS_VARIABLE, PII_KEYS):
            assert env.get(key), f"{name} lacks {key}"
        store = urlsplit(env["AIRFLOW_CONN_SALES_CHANNEL_DB"])
        assert (store.scheme, store.hostname, store.username, store.path) == (
            "postgresql",
            "postgres",
            "sales_channel",
            "/sales_channel",
        )
        assert store.password == env_example["SALES_CHANNEL_DB_PASSWORD"]
    # The API server reads the state store (the Sales Channel page), nothing else of the integration's.
    for name, allowed in (
        ("airflow-apiserver", {"AIRFLOW_CONN_SALES_CHANNEL_DB"}),
        ("airflow-scheduler", set()),
        ("airflow-dag-processor", set()),
    ):
        env = container_env(services[name], env_example)
        assert {k for k in env if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))} == allowed, name
        assert PII_KEYS not in env, f"{name} must not hold the buyer-data key"
    worker_store = container_env(services["airflow-worker"], env_example)["AIRFLOW_CONN_SALES_CHANNEL_DB"]
    assert container_env(services["airflow-apiserver"], env_example)["AIRFLOW_CONN_SALES_CHANNEL_DB"] == worker_store


def test_every_long_running_service_has_a_health_check(services):
    for name, service in services.items():
        restart = str(service.get("restart", "no"))
        if name in ONE_SHOT_SERVICES:
            assert restart == "no", f"{name} runs once: it must not restart"
            continue
        assert restart in LONG_RUNNING_RESTART, f"{name}: a long-running service needs a restart policy"
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name} has no health check"
        for key in ("interval", "retries"):
            assert key in service["healthcheck"], f"{name}: health check without {key}"


def test_start_order_follows_health(services):
    for name in LONG_RUNNING_AIRFLOW:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
    init = services["airflow-init"]["depends_on"]
    assert init["postgres"]["condition"] == init["redis"]["condition"] == "service_healthy"
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    profiled = {name for name, service in services.items() if service.get("profiles")}
    for name, service in services.items():
        if not service.get("profiles"):
            assert not set(service.get("depends_on") or {}) & profiled, f"{name} depends on an optional service"


def test_workers_scale(services):
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert "container_name" not in worker, "a container_name prevents --scale airflow-worker=N"
    assert not worker.get("ports"), "a published port prevents --scale airflow-worker=N"
    for name in AIRFLOW_SERVICES:
        assert "container_name" not in services[name], name
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # Celery's warm shutdown on stop


def test_sandboxes_are_optional_and_reachable_as_the_example_connections_say(services, env_example):
    sandbox_home = copy_destination("sandboxes/", "sandboxes").rstrip("/").rsplit("/", 1)[0]
    for name in (*SANDBOX_SERVICES, "sandbox-seed"):
        assert "sandboxes" in services[name].get("profiles", []), f"{name} is not under the sandboxes profile"
        assert services[name]["working_dir"] == sandbox_home, name
        assert services[name]["build"] == {"context": ".", "target": "sandboxes"}, name
        assert services[name]["image"] != services["airflow-scheduler"]["image"], f"{name} would take the Airflow tag"
    for name in set(REQUIRED_SERVICES) - set(SANDBOX_SERVICES):
        assert not services[name].get("profiles"), f"{name} must always run"
    amazon = services["amazon-sandbox"]["command"]
    commerce = services["commerce-sandbox"]["command"]
    assert amazon[:3] == ["python", "-m", "sandboxes.amazon"] and "--live" in amazon
    assert commerce[:3] == ["python", "-m", "sandboxes.commerce"]
    for name, port in (("amazon-sandbox", "8701"), ("commerce-sandbox", "8702")):
        command = services[name]["command"]
        assert command[command.index("--host") + 1] == "0.0.0.0", name  # noqa: S104 - inside its container
        assert command[command.index("--port") + 1] == port, name
        assert any(str(p).endswith(f":{port}") for p in services[name]["ports"]), name
        state_file = command[command.index("--state-file") + 1]
        mounts = [v.split(":")[1] for v in services[name]["volumes"]]
        assert any(state_file.startswith(m + "/") for m in mounts), f"{name}: {state_file} is not on a volume"
    amazon_conn = json.loads(env_example["AIRFLOW_CONN_AMAZON_SP_API"])
    commerce_conn = json.loads(env_example["AIRFLOW_CONN_COMMERCE"])
    assert amazon_conn["host"] == "http://amazon-sandbox:8701"
    assert amazon_conn["extra"]["lwa_endpoint"] == "http://amazon-sandbox:8701/auth/o2/token"
    assert commerce_conn["host"] == "http://commerce-sandbox:8702"
    # The example's credentials are the sandboxes' own defaults.
    from sandboxes.amazon.config import AmazonSandboxConfig
    from sandboxes.commerce.config import CommerceSandboxConfig

    assert (amazon_conn["login"], amazon_conn["password"]) == (
        AmazonSandboxConfig.client_id,
        AmazonSandboxConfig.client_secret,
    )
    assert amazon_conn["extra"]["refresh_token"] == "sandbox-refresh-token"
    assert (commerce_conn["login"], commerce_conn["password"]) == (
        CommerceSandboxConfig.admin_username,
        CommerceSandboxConfig.admin_password,
    )
    assert env_example["COMPOSE_PROFILES"].split(",")[0] == "sandboxes"


def test_example_settings_and_connections_are_valid(env_example):
    from airflow.models.connection import Connection

    from amazon_commerce_sync.settings import parse_settings

    settings = parse_settings(env_example[SETTINGS_VARIABLE])
    assert settings.accounts
    from amazon_commerce_sync.provider_info import get_provider_info

    ours = {t["connection-type"] for t in get_provider_info()["connection-types"]}
    for key, conn_type in (
        ("AIRFLOW_CONN_AMAZON_SP_API", "amazon_sp_api"),
        ("AIRFLOW_CONN_COMMERCE", "adobe_commerce"),
    ):
        conn = Connection.from_json(env_example[key], conn_id=key.removeprefix("AIRFLOW_CONN_").lower())
        assert conn.conn_type == conn_type and conn_type in ours  # the package's own form in the UI


# -- variables and secrets ---------------------------------------------------------------------------------------


def test_every_variable_the_compose_file_reads_is_documented_in_env_example(compose, services, env_documented):
    text = "\n".join(strings(compose))
    unescaped = text.replace("$$", "")
    used = {m["name"] for m in REF.finditer(unescaped)}
    assert not re.search(r"\$[A-Za-z_]", unescaped), "use ${VAR}, not $VAR (or $$ for the container's shell)"
    passed_through = {k for s in services.values() for k, v in (s.get("environment") or {}).items() if v is None}
    undocumented = (used | passed_through) - env_documented
    assert not undocumented, f"document {sorted(undocumented)} in .env.example"
    required = {m["name"] for m in REF.finditer(unescaped) if m["op"] in (":?", "?")}
    example = parse_env_file(ENV_EXAMPLE)[0]
    assert not required - set(example), f"required but not set in .env.example: {sorted(required - set(example))}"
    for service in services.values():  # .env.example is enough for every service's environment to resolve
        container_env(service, example)


def test_no_secret_is_written_in_the_compose_file(services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if value is None or not SECRET_NAME.search(key):
                continue
            value = str(value)
            if key.startswith("AIRFLOW_CONN_") and "://" in value:
                secret = re.match(r"[a-z0-9+]+://[^:/@]+:(?P<pw>[^@]*)@", value)
                assert secret and REQUIRED_REF.match(secret["pw"]), f"{name}.{key}: the password must be ${{VAR}}"
                continue
            assert REQUIRED_REF.match(value), f"{name}.{key} must be ${{VAR}} or ${{VAR:?...}}, without a default"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    userinfo = re.compile(r"[a-z0-9+]+://[^:/@\s'\"]+:(?P<pw>\$\{[^}]*\}|[^@\s'\"]*)@")
    passwords = [m["pw"] for m in userinfo.finditer(text)]
    assert len(passwords) >= 3  # metadata DB, Celery results, state store
    for password in passwords:
        assert REQUIRED_REF.match(password), f"a password written in a URL: {password}"
    from sandboxes.amazon.config import AmazonSandboxConfig
    from sandboxes.commerce.config import CommerceSandboxConfig

    for default in (AmazonSandboxConfig.client_secret, CommerceSandboxConfig.admin_password, "sandbox-refresh-token"):
        assert default not in text


def test_env_example_commits_placeholders_only(env_example):
    for name, value in env_example.items():
        if name.startswith("AIRFLOW_CONN_") or name == SETTINGS_VARIABLE:
            continue  # the sandboxes' public test credentials (checked above)
        if SECRET_NAME.search(name):
            assert value == PLACEHOLDER, f".env.example must not carry a real {name}"


def test_deployment_switches_reach_the_containers(services):
    code = "\n".join(
        p.read_text(encoding="utf-8") for d in ("dags", "include") for p in sorted((ROOT / d).rglob("*.py"))
    )
    switches = set(re.findall(r"[\"'](SALES_CHANNEL_[A-Z0-9_]+)[\"']", code)) - SWITCHES_NOT_IN_COMPOSE
    assert switches
    for name in (*LONG_RUNNING_AIRFLOW, "airflow-init"):
        missing = switches - set(services[name]["environment"])
        assert not missing, f"{name} does not receive {sorted(missing)}"
    commented = parse_env_file(ENV_EXAMPLE)[1]
    for switch, default in re.findall(r"environment_schedule\(\s*\"(\w+)\",\s*\"([^\"]+)\"", code):
        assert commented.get(switch) == default, f".env.example documents {switch} with a wrong default"


# -- airflow-init, run for real ----------------------------------------------------------------------------------


def init_script(services) -> tuple[str, str]:
    """(the shell part before Airflow's entrypoint, the Python state-store set-up) of airflow-init."""
    command = services["airflow-init"]["command"]
    assert services["airflow-init"]["entrypoint"] == "/bin/bash" and command[0] == "-c"
    script = command[1].replace("$$", "$")
    shell, _, rest = script.partition("/entrypoint airflow version")
    assert rest, "airflow-init no longer runs the image's entrypoint (metadata DB migration, admin user)"
    python = re.search(r"python - <<'PY'\n(?P<code>.*?)\nPY\n", rest, re.DOTALL)
    assert python, "airflow-init no longer sets up the state store"
    return shell, python["code"]


def test_init_refuses_placeholders_naming_the_variable_only(services, env_example):
    shell, _ = init_script(services)
    env = {"PATH": os.environ["PATH"], **container_env(services["airflow-init"], env_example)}
    result = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "AIRFLOW__CORE__FERNET_KEY" in result.stderr and "CHANGE_ME" in result.stderr
    filled = {k: ("x" * 8 if v == PLACEHOLDER else v) for k, v in env_example.items()}
    env = {"PATH": os.environ["PATH"], **container_env(services["airflow-init"], filled)}
    result = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.postgres
def test_init_creates_and_migrates_the_state_store_idempotently(services, env_example, postgres_server):
    import sqlalchemy

    from amazon_commerce_sync.store.db import head_revision

    _, code = init_script(services)
    admin_url = sqlalchemy.engine.make_url(postgres_server)
    name = f"acs_deploy_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    env = container_env(services["airflow-init"], {**env_example, "SALES_CHANNEL_DB_PASSWORD": password})
    store_url = env["AIRFLOW_CONN_SALES_CHANNEL_DB"]
    assert store_url == f"postgresql://sales_channel:{password}@postgres:5432/sales_channel"
    host = f"{admin_url.host}:{admin_url.port or 5432}"
    env.update(
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=admin_url.render_as_string(hide_password=False),
        AIRFLOW_CONN_SALES_CHANNEL_DB=f"postgresql://{name}:{password}@{host}/{name}",
        PATH=os.environ["PATH"],
        PYTHONPATH=os.pathsep.join([str(ROOT / "include"), str(ROOT)]),
    )
    admin = sqlalchemy.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    try:
        first = subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        assert f"created the state store database '{name}'" in first.stdout
        assert password not in first.stdout + first.stderr
        second = subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "created" not in second.stdout and f"migrated to {head_revision()}" in second.stdout
        with admin.connect() as conn:
            owner = conn.exec_driver_sql(
                "SELECT r.rolname, r.rolcanlogin, r.rolsuper FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                "WHERE d.datname = %(name)s",
                {"name": name},
            ).one()
        assert tuple(owner) == (name, True, False)
        store = sqlalchemy.create_engine(admin_url.set(username=name, password=password, database=name))
        with store.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head_revision()
        store.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        admin.dispose()


def test_init_rejects_invalid_settings_by_field(services, env_example):
    _, code = init_script(services)
    env = container_env(services["airflow-init"], env_example)
    env.update(PATH=os.environ["PATH"], PYTHONPATH=str(ROOT / "include"))
    env[SETTINGS_VARIABLE] = json.dumps({"accounts": [{"account_id": "us-main", "marketplace_ids": ["ATVPDKIKX0DER"]}]})
    result = subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "AIRFLOW_VAR_SALES_CHANNEL_SETTINGS" in result.stderr and "import_orders_after" in result.stderr
    env[SETTINGS_VARIABLE] = env_example[SETTINGS_VARIABLE]
    env["AIRFLOW_CONN_COMMERCE"] = '{"conn_type": "http", "host": '
    result = subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "AIRFLOW_CONN_COMMERCE in .env is not valid JSON" in result.stderr
