"""The reference cache: stored atomically under a key of model files, examples and dtype; read back exactly."""
import torch

from obliviate.train import reference
from tests.train.test_stream import example


def test_store_and_load_round_trip(tmp_path):
    values = [torch.randn(3), torch.randn(1)]
    assert reference.load_cached("k", cache_dir=tmp_path) is None
    reference.store_cached("k", values, cache_dir=tmp_path)
    back = reference.load_cached("k", cache_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(values, back))
    assert [p.name for p in tmp_path.iterdir()] == ["k.pt"]


def test_key_changes_with_model_files_examples_and_dtype(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_text("1")
    exs = [example(0, 5), example(1, 6)]
    key = reference.cache_key([tmp_path / "m"], exs, torch.float32)
    assert key == reference.cache_key([tmp_path / "m", None], exs, torch.float32)
    assert key != reference.cache_key([tmp_path / "m"], exs[:1], torch.float32)
    assert key != reference.cache_key([tmp_path / "m"], exs, torch.bfloat16)
    (tmp_path / "m" / "w").write_text("22")
    assert key != reference.cache_key([tmp_path / "m"], exs, torch.float32)


def test_scatter_places_values_at_target_positions():
    targets = torch.tensor([[-100, 5, 6, -100], [-100, -100, 7, -100]])
    out = reference.scatter_reference([torch.tensor([-1.0, -2.0]), torch.tensor([-3.0])], targets)
    assert out.tolist() == [[0.0, -1.0, -2.0, 0.0], [0.0, 0.0, -3.0, 0.0]]


# Two processes that need the same entry: each waits until both have started, then looks the entry up and, when it
# is missing, computes it (slowly) and stores it. Under `cache_lock` exactly one computes; the other reads.
NEEDS_ENTRY = """
import sys, time, pathlib, torch
from obliviate.train import reference
key, cache, log, me, other = sys.argv[1:]
pathlib.Path(me).touch()
while not pathlib.Path(other).exists():
    time.sleep(0.01)
with reference.cache_lock(key, cache_dir=cache):
    refs = reference.load_cached(key, cache_dir=cache)
    if refs is None:
        with open(log, "a") as f:
            f.write("computed\\n")
        time.sleep(0.5)
        refs = [torch.arange(4.0), torch.ones(2)]
        reference.store_cached(key, refs, cache_dir=cache)
print([r.tolist() for r in refs])
"""

# A process storing one entry again and again, alternating two different values.
STORES = """
import sys, torch
from obliviate.train import reference
key, cache, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
for i in range(20):
    reference.store_cached(key, [torch.full((200_000,), value), torch.full((3,), value)], cache_dir=cache)
"""


def _python(code, *args):
    import os
    import subprocess
    import sys

    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"})


def test_two_processes_needing_one_entry_compute_it_once(tmp_path):
    log = tmp_path / "log"
    procs = [_python(NEEDS_ENTRY, "k", tmp_path / "cache", log, tmp_path / me, tmp_path / other)
             for me, other in (("a", "b"), ("b", "a"))]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] == "[[0.0, 1.0, 2.0, 3.0], [1.0, 1.0]]\n"
    assert log.read_text() == "computed\n"


def test_concurrent_writers_of_one_entry_never_leave_half_a_file(tmp_path):
    cache = tmp_path / "cache"
    writers = [_python(STORES, "k", cache, value) for value in (1.0, 2.0)]
    while any(w.poll() is None for w in writers):
        refs = reference.load_cached("k", cache_dir=cache)
        if refs is not None:
            value = refs[0][0].item()
            assert value in (1.0, 2.0) and (refs[0] == value).all() and (refs[1] == value).all()
            assert refs[0].shape == (200_000,)
    assert [w.returncode for w in writers] == [0, 0]
    assert reference.load_cached("k", cache_dir=cache)[1].tolist() in ([1.0] * 3, [2.0] * 3)
    assert sorted(p.name for p in cache.iterdir()) == ["k.pt"]  # no temporaries left
