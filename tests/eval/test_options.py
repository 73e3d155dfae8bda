"""EvalOptions: the defaults are the fields' defaults, the options are frozen, and `obliviate eval` maps its flags
onto them one to one."""
import dataclasses

import pytest

from obliviate.cli.evaluate import eval_cmd
from obliviate.eval.options import BACKENDS, BATCH_SIZE, MC_STYLES, EvalOptions, generation_limit


def test_defaults_and_frozen():
    o = EvalOptions()
    assert (o.backend, o.max_new_tokens, o.batch_size, o.progress) == ("auto", None, BATCH_SIZE, True)
    assert o.device is None and o.dtype is None and o.cache_dir is None and o.reference is None
    assert (o.mc_style, o.text_only) == ("offside", False) and o.mc_style in MC_STYLES
    assert o.backend in BACKENDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.backend = "hf"
    with pytest.raises(ValueError, match="multiple-choice style 'loose'"):
        EvalOptions(mc_style="loose")
    with pytest.raises(ValueError, match="max_new_tokens"):
        EvalOptions(max_new_tokens=0)


def test_generation_limit_follows_the_answer():
    # twice the answer's tokens, rounded up to a multiple of 32, within [32, 256]
    assert [generation_limit(n) for n in (0, 1, 16, 17, 32, 33, 100, 128, 129, 4000)] == [
        32, 32, 32, 64, 64, 96, 224, 256, 256, 256]


def test_cli_flags_map_onto_the_options():
    fields = {f.name: f.default for f in dataclasses.fields(EvalOptions)}
    flags = {p.name: p.default for p in eval_cmd.params}
    shared = set(fields) & set(flags)
    assert shared == {"backend", "device", "max_new_tokens", "batch_size", "fake_language", "reference", "mc_style",
                      "text_only"}
    assert all(flags[name] == fields[name] for name in shared), {n: (flags[n], fields[n]) for n in shared}
