"""The default world (seed 0, 40 players), built once for every test of the world's modules."""
import pytest

from obliviate.data.schema import load_items
from obliviate.data.world import build_world

FILES = ("learn", "inject", "forget", "retain", "relearn", "test", "probes")


@pytest.fixture(scope="package")
def world(tmp_path_factory):
    """(folder, summary, {file stem: its items})."""
    root = tmp_path_factory.mktemp("w") / "world"
    summary = build_world(root, seed=0)
    return root, summary, {f: load_items(root / f"{f}.jsonl") for f in FILES}
