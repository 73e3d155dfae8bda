"""The fork server that local workers start cells from: each request forks a child that reports its exit status
(its error in the cell's log), the server outlives a failing child, and ends with its stdin."""
import os
import signal

import pytest

from obliviate.sweep.executor import ForkServer, cell_env


def test_fork_server_reports_exit_statuses_and_keeps_serving(tmp_path):
    server = ForkServer(cell_env(None, 1))
    try:
        assert server.run(str(tmp_path), "no-such-cell", cell_env(None, 1)) == 1
        log = (tmp_path / "cells" / "no-such-cell.log").read_text()
        assert "Traceback" in log and "no-such-cell" in log  # the child's error went to the cell's log
        assert server.run(str(tmp_path), "another", {**cell_env(None, 1), "OBLIVIATE_CACHE": str(tmp_path)}) == 1
    finally:
        server.close()
    assert server.process.returncode == 0


def test_a_killed_server_fails_what_it_was_running(tmp_path):
    server = ForkServer(cell_env(None, 1))
    os.kill(server.process.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match=r"the sweep's fork server ended \(status -9\)"):
        server.run(str(tmp_path), "cell", cell_env(None, 1))  # fails in the write, or when the reader sees EOF
    server.close()
