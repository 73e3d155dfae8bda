"""obliviate.files: atomic file and folder writes (old content kept on any error, no temporaries left), model
folder fingerprints, adapter lookup, recorded versions."""
import os

import pytest

import obliviate
from obliviate import files, locks
from obliviate.files import adapter_dir, atomic_dir, atomic_file, fingerprint, versions, write_text


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_file_keeps_the_old_content_on_error(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_file(path) as f:
            f.write(b"half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and names(tmp_path) == ["a.txt"]

    def no_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and names(tmp_path) == ["a.txt"]

    with pytest.raises(RuntimeError):  # a failed first write leaves no file at all
        with atomic_file(tmp_path / "b.txt"):
            raise RuntimeError
    assert names(tmp_path) == ["a.txt"]
    write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓" and names(tmp_path) == ["a.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_dir_replaces_a_folder_only_when_complete(tmp_path):
    out = tmp_path / "sub" / "out"
    with atomic_dir(out) as tmp:  # a new folder, its parents made
        (tmp / "a.txt").write_text("1")
    assert names(out) == ["a.txt"]
    with atomic_dir(out) as tmp:
        (tmp / "b.txt").write_text("2")
        assert names(out) == ["a.txt"] and tmp.parent == out.parent and tmp.name.startswith(files.TMP_PREFIX)
    assert names(out) == ["b.txt"] and names(out.parent) == ["out"]
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_dir(out) as tmp:
            (tmp / "c.txt").write_text("3")
            raise RuntimeError("killed")
    assert names(out) == ["b.txt"] and (out / "b.txt").read_text() == "2" and names(out.parent) == ["out"]


def test_fingerprint_changes_with_a_file(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"1234")
    first = fingerprint(model, None)
    assert first == fingerprint(model) and len(first) == 20
    st = (model / "w.bin").stat()
    (model / "w.bin").write_bytes(b"5678")  # same size: the modification time tells
    os.utime(model / "w.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = fingerprint(model)
    assert second != first
    (model / "extra.json").write_text("{}")
    assert fingerprint(model) != second
    assert fingerprint(model, tmp_path / "adapter") != fingerprint(model)


def test_adapter_dir(tmp_path):
    assert adapter_dir(tmp_path) == tmp_path  # an adapter folder itself, or no adapter at all
    (tmp_path / "adapter").mkdir()
    assert adapter_dir(tmp_path) == tmp_path  # adapter/ without its config is not an adapter
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert adapter_dir(str(tmp_path)) == tmp_path / "adapter"


def test_versions():
    v = versions("no_such_distribution_xyz")
    assert v["obliviate"] == obliviate.__version__ and v["python"].count(".") == 2
    assert "no_such_distribution_xyz" not in v and "torch" in v


# -- issue 10: temporaries of killed processes, modes, named I/O errors, locks, new folders, option checks ---------

def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    tag = files._HOST_TAG
    dead, alive = dead_pid(), os.getpid()
    (tmp_path / f".tmp-run.{dead}-{tag}.abc").mkdir()  # a killed run's folder
    (tmp_path / f".tmp-run.{dead}-{tag}.abc" / "config.json").write_text("{}")
    (tmp_path / f".tmp-a.txt.{dead}-{tag}.x1").write_text("half")  # a killed atomic_file
    (tmp_path / f".tmp-b.{alive}-{tag}.live").mkdir()  # a live process's: kept
    (tmp_path / f".tmp-c.{dead}-00000000.other").mkdir()  # another host's: kept
    (tmp_path / f".tmp-w.{dead}-{tag}.old").mkdir()  # killed between atomic_dir's renames: w goes back
    removed = files.clean_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [f".tmp-a.txt.{dead}-{tag}.x1", f".tmp-run.{dead}-{tag}.abc"]
    assert names(tmp_path) == [f".tmp-b.{alive}-{tag}.live", f".tmp-c.{dead}-00000000.other", "w"]
    (tmp_path / f".tmp-d.{dead}-{tag}.zz").mkdir()
    write_text(tmp_path / "d", "x")  # the first write into a folder cleans it
    assert f".tmp-d.{dead}-{tag}.zz" not in names(tmp_path) and (tmp_path / "d").read_text() == "x"


def test_atomic_dir_gives_files_the_umask_modes(tmp_path):
    """Issue 10: safetensors writes 0600 files, so adapters were unreadable to another user's vLLM server."""
    from safetensors.torch import save_file
    import torch

    mask = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "adapter") as d:
            save_file({"w": torch.zeros(2)}, d / "adapter_model.safetensors")
            (d / "sub").mkdir(mode=0o700)
        assert (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "adapter" / "sub").stat().st_mode & 0o777 == 0o755
        assert (tmp_path / "adapter").stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(mask)


def test_io_errors_name_the_target_not_the_temporary(tmp_path):
    class SafetensorError(Exception):
        pass

    with pytest.raises(OSError) as e:
        with atomic_dir(tmp_path / "adapter") as d:
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert (e.value.errno, e.value.filename) == (28, str(tmp_path / "adapter")) and names(tmp_path) == []
    with pytest.raises(OSError) as e:
        with atomic_dir(tmp_path / "run") as d:
            raise OSError(28, "No space left on device", str(d / "metrics.jsonl"))
    assert e.value.filename == str(tmp_path / "run" / "metrics.jsonl") and names(tmp_path) == []
    with pytest.raises(RuntimeError, match="not an I/O error"):  # other errors pass unchanged
        with atomic_file(tmp_path / "a"):
            raise RuntimeError("not an I/O error")


def lock_holder(path, ready, release):
    with locks.folder_lock(path):
        ready.set()
        release.wait(30)


def test_folder_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=lock_holder, args=(tmp_path / "run", ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(locks.FolderBusy, match=rf"run: in use by pid {holder.pid} on {files.HOST} since "):
            with locks.folder_lock(tmp_path / "run"):
                pass
    finally:
        release.set()
        holder.join(30)
    with locks.folder_lock(tmp_path / "run"):  # released: free again, and the lock file goes with its holder
        assert (tmp_path / ".run.lock").is_file()
    assert names(tmp_path) == []


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / ".run.lock").write_text(f'{{"pid": {dead_pid()}, "host": "{files.HOST}", "started": "x", '
                                        '"command": "obliviate learn"}')
    with locks.folder_lock(tmp_path / "run"):  # no process holds the flock: the file's content is no claim
        assert f'"pid": {os.getpid()}' in (tmp_path / ".run.lock").read_text()


def test_new_folder_refuses_what_exists_and_replaces_only_its_own_kind(tmp_path):
    out = tmp_path / "a" / "b" / "ev"
    with pytest.raises(RuntimeError):
        with locks.new_folder(out) as d:
            raise RuntimeError
    assert names(tmp_path) == []  # the folders made above it went again
    with locks.new_folder(out, marker="results.json") as d:
        (d / "results.json").write_text("1")
    with pytest.raises(FileExistsError, match="already exists and is not empty \\(use --overwrite"):
        with locks.new_folder(out, marker="results.json", flag="--overwrite"):
            pass
    with locks.new_folder(out, replace=True, marker="results.json") as d:
        (d / "results.json").write_text("2")
    assert (out / "results.json").read_text() == "2"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("keep")
    with pytest.raises(FileExistsError, match="holds no results.json; not replacing"):
        with locks.new_folder(tmp_path / "home", replace=True, marker="results.json"):
            pass
    assert (tmp_path / "home" / "thesis.tex").read_text() == "keep"


def test_make_parents_takes_a_folder_another_process_made_meanwhile(tmp_path, monkeypatch):
    """Two sweep cells making OUT/runs/... at once: the one that loses the race to mkdir goes on (a CI failure of
    the Ray sweep test, 2026-12-02), and does not count the other's folder as its own to remove."""
    out = tmp_path / "out" / "runs" / "unlearn" / "cell"
    mkdir = files.Path.mkdir

    def beaten_to_it(self, *args, **kwargs):
        if self == tmp_path / "out" / "runs":
            os.mkdir(self)  # the other process, between our exists() and our mkdir()
        return mkdir(self, *args, **kwargs)

    monkeypatch.setattr(files.Path, "mkdir", beaten_to_it)
    made = files.make_parents(out)
    assert made == [tmp_path / "out", tmp_path / "out" / "runs" / "unlearn"]
    assert (tmp_path / "out" / "runs" / "unlearn").is_dir() and not out.exists()
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="file"):
        files.make_parents(tmp_path / "file" / "sub" / "run")


def test_default_device_refuses_devices_that_are_not_there():
    import torch

    assert files.default_device("cpu") == torch.device("cpu")
    for bad, problem in (("tpu", "is not a device"), ("cpu:x", "is not a device")):
        with pytest.raises(ValueError, match=problem):
            files.default_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' is not available here \\(0 cuda devices; use --device cpu\\)"):
            files.default_device("cuda")


def test_option_checks():
    files.check_int("steps", 1, minimum=1)
    files.check_real("lr", 1e-4, above=0)
    for value in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="steps must be an integer >= 1"):
            files.check_int("steps", value, minimum=1)
    for value in (float("nan"), float("inf"), -1.0, 0.0, None, True):
        with pytest.raises(ValueError, match=r"^lr must be a finite number > 0, got"):
            files.check_real("lr", value, above=0)
    with pytest.raises(ValueError, match=r"dropout must be a finite number >= 0 and < 1, got 1"):
        files.check_real("dropout", 1, at_least=0, below=1)


def test_file_lock_excludes_other_processes_and_dies_with_its_holder(tmp_path):
    import signal
    import subprocess
    import sys

    from obliviate.locks import Locked, file_lock

    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom obliviate.locks import file_lock\n"
                               f"with file_lock({str(lock)!r}):\n    print('locked', flush=True)\n    time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(Locked, match="locked by another process"):
            with file_lock(lock, blocking=False):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with file_lock(lock, blocking=False) as path:  # the kernel released the dead holder's lock
        assert path == lock
