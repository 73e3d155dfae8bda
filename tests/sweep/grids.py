"""Grid files for the sweep tests: written into a folder, with the toy data sets beside them."""
from pathlib import Path

# A small misinformation experiment (the shape of obliviate/recipes/grids/demo-*.toml, which the demo runs): pretrain,
# inject in L, unlearn over methods × language sets with a per-method learning rate, evaluate. Only planned here.
MISINFORMATION = """
name = "misinformation"

[world]
players = 12
fake_players = 3
forget_players = 3

[models.text]
tiny = "test"
texts = ["{world}/learn.jsonl", "{world}/inject.jsonl", "{world}/probes.jsonl"]

[data]
learn = { file = "{world}/learn.jsonl", modality = "text", attributes = ["club", "nationality"] }
inject = { file = "{world}/inject.jsonl" }
forget = { file = "{world}/forget.jsonl", modality = "text", misinformation = true, languages = "{langs}" }
retain = { file = "{world}/retain.jsonl", attributes = ["club", "nationality"], languages = "{langs}" }
probe_misinfo = { file = "{world}/probes.jsonl", modality = "text", misinformation = true }
probe_retain = { file = "{world}/probes.jsonl", modality = "text", roles = ["retain"], max_entities = 2 }

[axes]
method = ["ga", "npo", "idkpo"]
langs = { en = ["en"], L = ["fr"], "en+L" = ["en", "fr"] }

[defaults]
span = "value"
batch_size = 8

[stages.pretrain]
job = "learn"
model = "text"
data = "learn"
full = true
steps = 8
lr = 3e-3
batch_size = 16

[stages.inject]
job = "learn"
after = "pretrain"
data = "inject"
steps = 3

[stages.unlearn]
job = "unlearn"
after = "inject"
forget = "forget"
retain = "retain"
method = "{method}"
steps = 2
lr = 5e-3
when.method.ga = { lr = 2e-3 }
when.method.npo = { lr = 3e-3 }

[eval.text]
base = "pretrain"
base_name = "pretrained"
probes = { misinfo = "probe_misinfo", retain = "probe_retain" }
"""

# OFFSIDE's settings: complete × methods, selective and unimodal with the first method only, a relearning attack on
# the complete runs.
OFFSIDE = """
exclude = [{ setting = "selective", method = "npo" }, { setting = "unimodal", method = "npo" }]

[models.vl]
path = "vl-model"

[data]
learn = { file = "learn.jsonl", languages = ["en"] }
forget = { file = "forget.jsonl", misinformation = false }
forget_private = { file = "forget.jsonl", kinds = ["private"] }
retain = { file = "retain.jsonl" }
relearn = { file = "relearn.jsonl" }
probes = { file = "probes.jsonl", exclude_ids = ["*.i[0-9]h[0-9]"] }

[axes]
setting = ["complete", "selective", "unimodal"]
method = ["graddiff", "npo"]

[stages.pretrain]
job = "learn"
model = "vl"
data = "learn"
full = true

[stages.unlearn]
job = "unlearn"
after = "pretrain"
forget = "forget"
retain = "retain"
method = "{method}"
when.setting.selective = { forget = "forget_private" }
when.setting.unimodal = { text_only = true }

[stages.relearn]
job = "relearn"
after = "unlearn"
data = "relearn"
only = { setting = ["complete"] }

[eval.vl]
base = "pretrain"
probes = { forget = "probes" }
backend = "hf"
"""


def toy_grid(model, data: dict, *, steps: int = 3, extra: str = "") -> str:
    """Four unlearning cells (ga, npo × seeds 0, 1) on the toy model, checkpoints every step, and an evaluation."""
    return f"""
name = "toy"

[models.toy]
path = "{model}"

[data]
forget = {{ file = "{data['forget']}" }}
retain = {{ file = "{data['retain']}" }}
probes = {{ file = "{data['forget']}", languages = ["en"] }}

[axes]
method = ["ga", "npo"]
seed = [0, 1]

[stages.unlearn]
job = "unlearn"
model = "toy"
forget = "forget"
retain = "retain"
method = "{{method}}"
seed = "{{seed}}"
steps = {steps}
batch_size = 4
lr = 2e-3
save_every = 1
{extra}
[eval.toy]
base = "toy"
probes = {{ forget = "probes" }}
backend = "hf"
max_new_tokens = 8
score = false
"""


def write_grid(folder: Path, text: str, name: str = "grid.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
