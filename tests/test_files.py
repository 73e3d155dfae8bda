"""obliviate.files: atomic file and folder writes (old content kept on any error, no temporaries left), model
folder fingerprints, adapter lookup, recorded versions."""
import os

import pytest

import obliviate
from obliviate import files
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


def test_file_lock_excludes_other_processes_and_dies_with_its_holder(tmp_path):
    import signal
    import subprocess
    import sys

    from obliviate.files import Locked, file_lock

    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom obliviate.files import file_lock\n"
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
