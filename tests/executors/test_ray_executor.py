"""``--executor ray`` on a real Ray cluster agrees exactly with the serial read.

A two-CPU Ray head runs in a separate Python process for the whole module (``ray.init`` there,
stopped by closing its stdin), and the tests join it by address, so the join path, the pickling of
Traces back from Ray workers and error transport are exercised for real; one CLI test starts the
executor's own local runtime instead. Every Ray file (sessions, sockets, logs) goes under a
temporary folder (``RAY_TMPDIR``), the auth token comes from the environment (no ``~/.ray``), and
the teardown checks that no Ray process of this module is left running.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.conftest import shared_file
from tests.executors.test_executors import TWO_RANKS, _assert_same_profile, _assert_same_traces, _pid, _square

from infersight import api
from infersight.cli import run
from infersight.errors import InputError
from infersight.executors import Executor, open_executor
from infersight.executors.processes import WORKERS_ENV

HEAD_START_TIMEOUT_S = 90
# Ray's unix sockets live under RAY_TMPDIR/ray/session_<date>_<pid>/sockets/ (about 67 characters)
# and a socket path may not exceed 107; a longer pytest folder falls back to a short mkdtemp.
MAX_RAY_TMPDIR_CHARS = 40
HEAD_SCRIPT = """
import logging, sys, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
         object_store_memory=128 * 2**20)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # the test closes stdin to stop the cluster
ray.shutdown()
"""


def _require_ray() -> None:
    """Checks for ray without importing it: Ray reads its auth settings from the environment on import."""
    if importlib.util.find_spec("ray") is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("ray missing in CI: the test extra must install it")
    pytest.skip("ray not installed (pip install 'infersight[ray]')")


def _ray_processes_under(folder: Path) -> list[int]:
    """Pids whose command line names ``folder`` (raylet, GCS, workers all get the session path)."""
    found: list[int] = []
    if not Path("/proc").is_dir():  # not Linux: nothing to check with
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def ray_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Ray's environment for the module: files under a temp folder, token auth with a throwaway token."""
    _require_ray()
    folder = tmp_path_factory.mktemp("ray")
    short_fallback = len(str(folder)) > MAX_RAY_TMPDIR_CHARS
    if short_fallback:
        folder = Path(tempfile.mkdtemp(prefix="isray"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", str(folder))
        patch.setenv("RAY_AUTH_MODE", "token")
        patch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
        patch.setenv(WORKERS_ENV, "2")
        yield folder
    if short_fallback:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_address(ray_tmpdir: Path) -> Iterator[str]:
    """A real two-CPU Ray head in its own process for the whole module; yields ``127.0.0.1:<gcs port>``."""
    import ray

    stderr_path = ray_tmpdir / "head.stderr"
    with stderr_path.open("wb") as stderr:
        head = subprocess.Popen(
            [sys.executable, "-c", HEAD_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=ray_tmpdir,
            text=True,
        )
    assert head.stdin is not None and head.stdout is not None
    try:
        ready, _, _ = select.select([head.stdout], [], [], HEAD_START_TIMEOUT_S)
        gcs_address = head.stdout.readline().strip() if ready else ""
        assert gcs_address, f"the Ray head did not start: {stderr_path.read_text()[-2000:]}"
        yield f"127.0.0.1:{gcs_address.rsplit(':', 1)[1]}"
    finally:
        ray.shutdown()  # a test that failed mid-way may have left this process connected
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()  # Ray's processes share its fate (they die with their parent)
            head.wait()
    leftover = _ray_processes_under(ray_tmpdir)
    assert not leftover, f"Ray processes still running after the module: {leftover}"


@pytest.fixture(scope="class")
def joined(ray_address: str) -> Iterator[Executor]:
    """One executor joined to the head for a class of tests: one Ray job, so its workers import
    infersight once; closing it disconnects this process (the head keeps running)."""
    import ray

    executor = open_executor("ray", ray_address)
    assert executor.map(_square, [0]) == [0]  # join now, before any test changes sys.path
    yield executor
    executor.close()
    executor.close()  # idempotent
    assert not ray.is_initialized()


@pytest.mark.slow
class TestJoinedCluster:
    def test_maps_in_item_order_like_serial(self, joined: Executor) -> None:
        items = list(range(7))
        with open_executor("local") as serial:
            expected = serial.map(_square, items)
        assert joined.map(_square, items) == expected == [i * i for i in items]
        assert joined.map(_square, []) == []
        assert os.getpid() not in joined.map(_pid, list(range(4)))

    def test_rank_folder_equals_serial(self, joined: Executor) -> None:
        folder = shared_file(TWO_RANKS)
        serial = api.load([folder], executor="local")
        on_ray = api.load([folder], executor=joined)
        assert [t.rank for t in on_ray] == [0, 1]
        assert len(on_ray[1].kernels) > 0
        _assert_same_traces(serial, on_ray)
        _assert_same_profile(serial, on_ray)

    def test_bad_rank_file_names_the_file(self, tmp_path: Path, joined: Executor) -> None:
        shutil.copyfile(shared_file(f"{TWO_RANKS}/rank-0.json.gz"), tmp_path / "rank-0.json.gz")
        (tmp_path / "rank-1.json").write_bytes(b'{"traceEvents": [{"ph": "X", "cat": "kernel"')
        with pytest.raises(InputError, match=r"rank-1\.json"):
            api.load([tmp_path], executor=joined)

    def test_workers_lacking_a_module_is_an_input_error(
        self, tmp_path: Path, joined: Executor, ray_address: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A module only this process can import stands in for infersight missing on the cluster's
        workers (its folder joins sys.path after the job started, so the job's workers lack it)."""
        module_name = f"only_on_the_driver_{secrets.token_hex(4)}"
        (tmp_path / f"{module_name}.py").write_text("def triple(value: int) -> int:\n    return 3 * value\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        module = __import__(module_name)
        with pytest.raises(InputError, match=rf"Ray workers at {ray_address} cannot import {module_name}"):
            joined.map(module.triple, [1, 2])
        assert joined.map(_square, [3]) == [9]  # the connection survives the failed map

    def test_an_existing_connection_is_used_and_left_open(self, joined: Executor) -> None:
        import ray

        with open_executor("ray") as borrowing:
            assert borrowing.map(_square, [5, 6]) == [25, 36]
        assert ray.is_initialized()
        assert joined.map(_square, [4]) == [16]


@pytest.mark.slow
def test_cli_joins_a_cluster_by_address(
    tmp_path: Path, ray_address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shared_file(TWO_RANKS)
    on_ray, serial = tmp_path / "ray.json", tmp_path / "local.json"
    common = ["analyze", str(folder), "--json"]
    assert run([*common, str(on_ray), "--executor", "ray", "--executor-address", ray_address]) == 0
    assert run([*common, str(serial), "--executor", "local"]) == 0
    assert orjson.loads(on_ray.read_bytes())["profile"] == orjson.loads(serial.read_bytes())["profile"]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:1", r"--executor-address 127\.0\.0\.1:1: cannot reach the Ray cluster \(.*refused"),
        ("ray://127.0.0.1:1", r"--executor-address ray://127\.0\.0\.1:1: cannot reach the Ray cluster"),
        ("headnode", r"--executor-address headnode: expected host:port, ray://host:port or auto"),
    ],
)
def test_unreachable_or_malformed_address_is_one_line(
    ray_tmpdir: Path, address: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(shared_file(TWO_RANKS))
    assert run(["analyze", folder, "--executor", "ray", "--executor-address", address]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    with pytest.raises(InputError, match=message):
        api.load([shared_file(TWO_RANKS)], executor="ray", executor_address=address)


@pytest.mark.slow
def test_cli_starts_and_stops_its_own_local_runtime(
    tmp_path: Path, ray_tmpdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ray

    folder = shared_file(TWO_RANKS)
    on_ray, serial = tmp_path / "ray.json", tmp_path / "local.json"
    assert run(["analyze", str(folder), "--executor", "ray", "--json", str(on_ray)]) == 0
    assert not ray.is_initialized()  # the executor started the runtime, so it shut it down
    assert "Traceback" not in capsys.readouterr().err
    assert run(["analyze", str(folder), "--executor", "local", "--json", str(serial)]) == 0
    assert orjson.loads(on_ray.read_bytes())["profile"] == orjson.loads(serial.read_bytes())["profile"]


def test_close_without_a_map_starts_nothing(ray_tmpdir: Path) -> None:
    import ray

    executor = open_executor("ray")
    executor.close()
    executor.close()
    assert not ray.is_initialized()


def test_missing_ray_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import now raises ImportError
    with pytest.raises(InputError, match=r"--executor ray needs Ray: pip install 'infersight\[ray\]'"):
        open_executor("ray")
