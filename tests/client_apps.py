"""Client apps as a user would run them: each in its own virtualenv (or node_modules), beside the project.

The apps under tests/clients/ use the real client libraries and their official OpenTelemetry
instrumentations, whose pins need not agree with the project's (the newest pika instrumentation does
not resolve beside them). Each environment is built once from its committed, fully pinned
requirements (or package-lock.json) and cached under .eventscope/clients/<name>/<hash of the pins>/.
An app reaches the collectors only over OTLP and the brokers; it writes what it planted (its ground
truth) to a JSON file, apart from anything the collectors detect.

``python -m tests.client_apps`` builds every environment (``./run test`` does, before pytest).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "clients"
CACHE = ROOT / ".eventscope" / "clients"
PYTHON_ENVS = ("celery", "pika-0.44", "pika-0.66", "aio-pika", "botocore", "moto", "redis")
NODE_FILES = ("package.json", "package-lock.json")


def _digest(*files: Path) -> str:
    sha = hashlib.sha256()
    for path in files:
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _fresh(name: str, key: str) -> Path:
    """The cache directory for this key; other keys of the same name are stale and go."""
    home = CACHE / name
    for stale in home.glob("*"):
        if stale.name != key:
            shutil.rmtree(stale, ignore_errors=True)
    return home / key


def python_env(name: str) -> Path:
    """The python of the virtualenv built from tests/clients/<name>/requirements.txt (built when missing)."""
    requirements = APPS / name / "requirements.txt"
    target = _fresh(name, _digest(requirements))
    python = target / "bin" / "python"
    if (target / ".complete").exists():
        return python
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
        check=True,
    )
    (target / ".complete").write_text(str(requirements) + "\n")
    return python


def node_modules(app: str = "node") -> Path:
    """node_modules installed with ``npm ci`` from tests/clients/<app>'s package-lock.json."""
    sources = [APPS / app / name for name in NODE_FILES]
    target = _fresh(app, _digest(*sources))
    if (target / ".complete").exists():
        return target / "node_modules"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for source in sources:
        shutil.copy(source, target / source.name)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: apt-get install nodejs npm (Node 18 or newer)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"], cwd=target, check=True
    )
    (target / ".complete").write_text("npm ci\n")
    return target / "node_modules"


@dataclass
class Run:
    """One finished run of an app: its ground truth and what it printed."""

    truth: dict
    output: str


def run_app(command: list[str], env: dict[str, str], timeout: float = 120.0) -> Run:
    """Run an app to its end (it flushes its spans before exiting) and read the truth it wrote."""
    truth_path = Path(tempfile.mkdtemp(prefix="eventscope-truth-")) / "truth.json"
    full_env = {**os.environ, **env, "EVENTSCOPE_TRUTH": str(truth_path)}
    for leaked in ("PYTHONPATH", "VIRTUAL_ENV", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"):
        if leaked not in env:
            full_env.pop(leaked, None)
    done = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=timeout, cwd=APPS)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}:\n{output[-4000:]}")
    return Run(truth=json.loads(truth_path.read_text()), output=output)


def python_app(env_name: str, script: str, env: dict[str, str], *args: str, timeout: float = 120.0) -> Run:
    """Run tests/clients/<script> with the python of the <env_name> virtualenv."""
    return run_app([str(python_env(env_name)), str(APPS / script), *args], env, timeout)


def node_app(env: dict[str, str], *args: str, timeout: float = 120.0) -> Run:
    modules = node_modules()
    return run_app(["node", str(APPS / "node" / "app.js"), *args], {**env, "NODE_PATH": str(modules)}, timeout)


def main() -> int:
    for name in PYTHON_ENVS:
        print(f"client env {name}: {python_env(name)}", file=sys.stderr)
    print(f"client env node: {node_modules()}", file=sys.stderr)
    print(f"client env asyncapi: {node_modules('asyncapi')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
