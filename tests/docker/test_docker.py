"""The Docker files, checked without a Docker engine.

The Dockerfile is read statically (base image, user, entry point, health
check, what the final stage holds). The compose files are validated by
Debian's `docker-compose config` when it is installed (`.ci/run` installs it
where apt-get works), and their shape is checked on the text either way.
test_compose_up.py builds and runs them for real.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
CURVE = DOCKER / "curve.yml"
DOTENV = DOCKER / ".env"
PACKAGES = ("fedd", "daemon", "peer", "crypto", "learner", "topology")
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|cc|make|build-essential|rustc|cargo)\b")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def dockerfile_stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, with continuation lines joined and comments
    dropped; the ARGs before the first FROM are stage 0, with base "" ."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages = [Stage("", "")]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arg = line.partition(" ")
        keyword, arg = keyword.upper(), arg.strip()
        if keyword == "FROM":
            base, _, name = arg.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip()))
        else:
            stages[-1].instructions.append((keyword, arg))
    return stages


def test_the_base_image_is_slim_python_named_once_and_replaceable():
    globals_, *stages = dockerfile_stages(DOCKER / "Dockerfile")
    # One default, overridable with a build argument (a private registry's copy).
    assert globals_.all("ARG") == [
        "FEDD_BASE_IMAGE=",
        "BASE_IMAGE=${FEDD_BASE_IMAGE:-python:3.11-slim}",
    ]
    assert [stage.base for stage in stages] == ["${BASE_IMAGE}"] * 2


def test_the_final_image_holds_the_package_only():
    _, build, final = dockerfile_stages(DOCKER / "Dockerfile")
    # Nothing from the source tree reaches the final stage: only the built wheels.
    copies = final.all("COPY")
    assert copies and all(c.startswith("--from=") for c in copies), copies
    assert not final.all("ADD")
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run), run
        assert "apt-get install" not in run and "pip wheel" not in run, run
        # The wheels only: the final stage never asks a package index.
        assert "pip install" not in run or "--no-index --find-links /wheels" in run, run
    # The build stage copies what the wheel needs, not the whole tree.
    sources = [c.split()[0] for c in build.all("COPY")]
    assert "." not in sources and set(PACKAGES) <= set(sources), sources


def test_the_build_trusts_the_ca_certificates_in_docker_certs():
    _, build, _ = dockerfile_stages(DOCKER / "Dockerfile")
    copies = build.all("COPY")
    assert copies[0] == "docker/certs/ /usr/local/share/ca-certificates/fedd/", copies
    assert build.all("RUN")[0] == "update-ca-certificates"
    assert "PIP_CERT=/etc/ssl/certs/ca-certificates.crt" in build.all("ENV")
    # The folder exists in a fresh clone (COPY needs it); the certificates stay out of git.
    assert (DOCKER / "certs" / "README.md").is_file()
    assert "/docker/certs/*.crt" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_image_runs_fedd_as_an_unprivileged_user_with_a_health_check():
    final = dockerfile_stages(DOCKER / "Dockerfile")[-1]
    users = final.all("USER")
    assert users and users[-1] not in ("root", "0"), users
    assert final.all("ENTRYPOINT") == ['["fedd"]']
    [health] = final.all("HEALTHCHECK")
    command = health.partition("CMD")[2].strip()
    assert command.startswith('["fedd", "status"'), health
    assert re.search(r"--timeout=\d+s", health)


def test_the_build_context_leaves_out_data_state_keys_and_environments():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "data", "state", "outputs", "keys", "**/*.secret"} <= ignored


def service_blocks(text: str) -> dict[str, str]:
    """The text of each service under `services:` of a compose file (2-space indent)."""
    services = ("\n" + text).split("\nservices:\n", 1)[1]
    services = re.split(r"\n(?=\S)", services, maxsplit=1)[0]  # up to the next top-level key
    blocks: dict[str, str] = {}
    for match in re.finditer(r"^  ([\w.-]+):\n((?:(?:    .*)?\n)*)", services + "\n", re.M):
        blocks[match.group(1)] = match.group(2)
    return blocks


def check_shape(text: str) -> None:
    blocks = service_blocks(text)
    assert set(blocks) == {"hub", "peer"}, sorted(blocks)
    peer = blocks["peer"]
    assert "container_name" not in peer and "ports" not in peer
    assert "FEDD_SHARD: auto" in peer
    assert re.search(r"FEDD_CONNECT: '?\"?tcp://hub:5555", peer)
    assert re.search(r"- ['\"]?/home/fedd/state/peer['\"]?\n", peer), "anonymous state volume"
    assert "status" in peer and "peer" in peer  # its own health check
    hub = blocks["hub"]
    assert re.search(r"FEDD_SECAGG: ['\"]?\$\{FEDD_SECAGG:-full\}|FEDD_SECAGG: full", hub)


def test_the_compose_file_has_a_hub_and_scalable_peers():
    check_shape(COMPOSE.read_text())


def test_one_service_builds_the_image_both_run():
    text = COMPOSE.read_text()
    blocks = service_blocks(text)
    assert "build:" in blocks["hub"] and "build:" not in blocks["peer"]
    assert "- FEDD_BASE_IMAGE\n" in blocks["hub"]  # passed on to the Dockerfile's ARG
    assert "image: ${FEDD_IMAGE:-fedd:latest}" in text and "image:" not in blocks["peer"]
    for block in blocks.values():
        assert "- ${FEDD_DATA_ROOT:-../data}:/home/fedd/data:ro" in block


def test_the_project_is_named_in_dotenv_which_compose_v1_reads():
    # Compose v1 refuses a top-level `name:`; both versions read docker/.env.
    assert not re.search(r"^name:", COMPOSE.read_text(), re.M)
    settings = [line for line in DOTENV.read_text().splitlines() if not line.startswith("#")]
    assert settings == ["COMPOSE_PROJECT_NAME=fedd"]


def compose_tool() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.parametrize("files", [[COMPOSE], [COMPOSE, CURVE]], ids=["plain", "curve"])
def test_docker_compose_validates_the_compose_files(files: list[Path], tmp_path: Path):
    tool = compose_tool()
    if tool is None:
        pytest.skip("no docker-compose here (Debian: apt-get install docker-compose)")
    args = [arg for f in files for arg in ("-f", str(f))]
    # A clean environment: the defaults of the file, not this shell's FEDD_* values.
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [*tool, *args, "config"], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, f"{shlex.join([*tool, *args, 'config'])}:\n{result.stderr}"
    check_shape(result.stdout)
    if CURVE in files:
        peer = service_blocks(result.stdout)["peer"]
        assert "FEDD_CURVE_SECRET: /home/fedd/keys/peers" in peer
        assert "FEDD_HUB_PUBLIC: /home/fedd/keys/hub.pub" in peer


def test_a_broken_compose_file_fails_validation(tmp_path: Path):
    tool = compose_tool()
    if tool is None:
        pytest.skip("no docker-compose here (Debian: apt-get install docker-compose)")
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    volumes:\n", "    volumes: 7\n", 1))
    result = subprocess.run(
        [*tool, "-f", str(broken), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert result.returncode != 0
