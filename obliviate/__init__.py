"""obliviate: unlearn misinformation and private facts from (vision-)language models, then prove they are gone.

    from obliviate import Unlearner, Evaluator, build_world, build_tiny_model

The names load lazily, so `import obliviate` (and the CLI's --help) does not import torch.
"""
from importlib import import_module
from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text().strip()

_EXPORTS = {
    "Unlearner": "obliviate.train.unlearner", "RunResult": "obliviate.train.unlearner",
    "TrainOptions": "obliviate.train.options", "MethodOptions": "obliviate.train.options",
    "LoraOptions": "obliviate.models.options", "Evaluator": "obliviate.eval.evaluate",
    "EvalOptions": "obliviate.eval.options", "WorldSpec": "obliviate.data.world",
    "Item": "obliviate.data.schema", "load_items": "obliviate.data.schema", "write_items": "obliviate.data.schema",
    "build_world": "obliviate.data.world", "build_tiny_model": "obliviate.models.tiny",
    "load_model": "obliviate.models.load", "write_report": "obliviate.eval.report",
    "run_demo": "obliviate.recipes.demo", "Sweep": "obliviate.sweep.run",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'obliviate' has no attribute {name!r}")
