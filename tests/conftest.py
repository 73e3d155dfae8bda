"""Test-wide settings and session fixtures. Triton has no CPU backend: its kernels run here only under the
interpreter, which must be switched on before triton is first imported."""
import os
import shutil

if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# -- session fixtures: a toy dataset and tiny models that already know it (imports deferred: collection stays fast)

import pytest  # noqa: E402

from tests import toy  # noqa: E402


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    return {
        "folder": folder,
        "all": toy.write(folder, "all.jsonl", toy.text_items()),
        "forget": toy.write(folder, "forget.jsonl", toy.text_items(players=[0, 1])),
        "retain": toy.write(folder, "retain.jsonl", toy.text_items(players=range(2, 8))),
        "images": toy.write(folder, "images.jsonl", toy.image_items(folder) + toy.text_items(players=range(4),
                                                                                          languages=("en",))),
    }


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory, toy_data):
    """A test-preset Qwen2 fully fine-tuned on the toy facts (the 'pretrained' model the tests unlearn from)."""
    from obliviate.models.tiny import build_tiny_model
    from obliviate.train.options import TrainOptions
    from obliviate.train.unlearner import Unlearner

    root = tmp_path_factory.mktemp("models")
    build_tiny_model(root / "random", texts=toy.corpus(), preset="test", seed=0)
    learned = Unlearner(root / "random", progress=False, cache_dir=root / "cache").learn(
        toy_data["all"], out=root / "learned", full=True,
        options=TrainOptions(steps=120, lr=1e-2, batch_size=16, warmup=5, seed=0))
    return learned.model_dir


@pytest.fixture(scope="session")
def toy_vl_model(tmp_path_factory):
    from obliviate.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("vl")
    build_tiny_model(root / "random", texts=toy.corpus(), preset="test", vision=True, seed=0)
    return root / "random"
