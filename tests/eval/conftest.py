"""Fixtures of the generation tests: one perturbed tiny model with adapters a0, a1 and c (on a0), built once for
the package (lora_setup.make_setup), the toy items, and a transformers backend on them."""
import pytest

from obliviate.eval.backend_hf import HfBackend

from tests import toy
from tests.eval.lora_setup import NEW, make_setup


@pytest.fixture(scope="package")
def gen_setup(tmp_path_factory):
    return make_setup(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="package")
def gen_items():
    return toy.text_items()  # 32 items, en + fr


@pytest.fixture(scope="package")
def hf(gen_setup):
    model, named = gen_setup
    backend = HfBackend(model, named, max_new_tokens=NEW, batch_size=8, device="cpu")
    yield backend
    backend.close()
