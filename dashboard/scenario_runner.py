"""One scenario run at a time: ``python -m sample_system scenario run NAME`` as a subprocess, its progress
lines and its ground-truth file (JSON lines, one record per injected fault).

The runner is held by the page with ``st.cache_resource``, so a run survives reruns and page changes
and every browser tab sees the same run (one classroom, one projector).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from dashboard import controls, sample_cli

STOP_TIMEOUT_S = 10.0
PROGRESS_LINES = 8


@dataclass
class ScenarioRun:
    """A started scenario: its process, where its output and ground truth go, and when it began."""

    name: str
    seconds: float | None
    process: subprocess.Popen
    truth_path: Path
    log_path: Path
    started_ns: int
    started_monotonic: float
    ended_monotonic: float | None = None
    results_path: Path | None = None
    options: tuple[str, ...] = ()

    def running(self) -> bool:
        """True while the process runs; notes when it ended the first time it is seen ended."""
        if self.process.poll() is None:
            return True
        if self.ended_monotonic is None:
            self.ended_monotonic = time.monotonic()
        return False

    def elapsed_s(self) -> float:
        """Seconds since the start, frozen once the run ended."""
        self.running()
        return (self.ended_monotonic or time.monotonic()) - self.started_monotonic

    def fraction_done(self) -> float:
        """How far through its planned seconds the run is (1.0 once it exited)."""
        if not self.running():
            return 1.0
        return min(self.elapsed_s() / self.seconds, 0.99) if self.seconds else 0.0

    def progress(self, lines: int = PROGRESS_LINES) -> list[str]:
        """The last progress lines the scenario printed (its standard output; service logs go elsewhere)."""
        try:
            with self.log_path.open(errors="replace") as log:
                return [line.rstrip() for line in deque(log, maxlen=lines) if line.strip()]
        except OSError:
            return []

    def truth(self) -> list[dict]:
        """The ground-truth records written so far; a half-written last line is skipped."""
        return read_truth(self.truth_path)

    def results(self) -> dict | None:
        """The run's results document once written (None before, or for a scenario that writes none)."""
        if self.results_path is None:
            return None
        try:
            answer = json.loads(self.results_path.read_text())
        except (OSError, ValueError):
            return None
        return answer if isinstance(answer, dict) else None

    def stop(self) -> None:
        """Ask the scenario to stop (SIGTERM), and kill it if it does not."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


def read_truth(path: Path) -> list[dict]:
    """Ground-truth records from a JSON-lines file; missing file = none yet."""
    records = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return records
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "fault" in record:
            records.append(record)
    return records


def run_arguments(
    name: str,
    truth_path: Path,
    seconds: float | None,
    seed: int | None,
    results_path: Path | None = None,
    options: tuple[str, ...] = (),
) -> list[str]:
    """The ``scenario run`` arguments for one run (``options``: further flags, e.g. ``--variant stream``)."""
    args = ["scenario", "run", name, "--truth", str(truth_path), *options]
    if results_path is not None:
        args += ["--results", str(results_path)]
    if seconds:
        args += ["--seconds", f"{seconds:g}"]
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


class ScenarioRunner:
    """Starts, stops and remembers the current scenario run."""

    def __init__(self, workdir: str | None = None):
        self._workdir = Path(workdir or tempfile.mkdtemp(prefix="eventscope-scenarios-"))
        self._lock = threading.Lock()
        self.current: ScenarioRun | None = None

    def start(
        self,
        name: str,
        seconds: float | None = None,
        seed: int | None = None,
        options: tuple[str, ...] = (),
        results: bool = False,
    ) -> ScenarioRun:
        """Stop any run in progress and start ``name``; ControlsDisabled unless EVENTSCOPE_CONTROLS allows it.

        ``results``: the scenario writes its results document (sync_vs_events) beside its ground truth.
        """
        controls.require()
        with self._lock:
            if self.current is not None:
                self.current.stop()
            stamp = time.strftime("%Y%m%d-%H%M%S")
            truth_path = self._workdir / f"{stamp}-{name}.truth.jsonl"
            log_path = self._workdir / f"{stamp}-{name}.log"
            results_path = self._workdir / f"{stamp}-{name}.results.json" if results else None
            with log_path.open("wb") as log, (self._workdir / f"{stamp}-{name}.stderr").open("wb") as errors:
                process = subprocess.Popen(
                    sample_cli.command(*run_arguments(name, truth_path, seconds, seed, results_path, options)),
                    cwd=sample_cli.ROOT,
                    env=sample_cli.environment(os.environ),
                    stdout=log,
                    stderr=errors,
                    stdin=subprocess.DEVNULL,
                )
            self.current = ScenarioRun(
                name,
                seconds,
                process,
                truth_path,
                log_path,
                time.time_ns(),
                time.monotonic(),
                None,
                results_path,
                options,
            )
            return self.current

    def stop(self) -> None:
        """Stop the current run, if any."""
        with self._lock:
            if self.current is not None:
                self.current.stop()
