"""EvalOptions: the defaults are the fields' defaults, the options are frozen, and `obliviate eval` maps its flags
onto them one to one."""
import dataclasses

import pytest

from obliviate.cli.evaluate import eval_cmd
from obliviate.eval.options import BACKENDS, BATCH_SIZE, MAX_NEW_TOKENS, EvalOptions


def test_defaults_and_frozen():
    o = EvalOptions()
    assert (o.backend, o.max_new_tokens, o.batch_size, o.progress) == ("auto", MAX_NEW_TOKENS, BATCH_SIZE, True)
    assert o.device is None and o.dtype is None and o.cache_dir is None and o.reference is None
    assert o.backend in BACKENDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.backend = "hf"


def test_cli_flags_map_onto_the_options():
    fields = {f.name: f.default for f in dataclasses.fields(EvalOptions)}
    flags = {p.name: p.default for p in eval_cmd.params}
    shared = set(fields) & set(flags)
    assert shared == {"backend", "device", "max_new_tokens", "batch_size", "fake_language", "reference"}
    assert all(flags[name] == fields[name] for name in shared), {n: (flags[n], fields[n]) for n in shared}
