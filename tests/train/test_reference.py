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
