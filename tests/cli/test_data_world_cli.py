"""`obliviate data check`, `obliviate world build` and `obliviate import`: help, output and exit codes."""
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from obliviate.cli.data import data
from obliviate.cli.importer import import_cmd
from obliviate.cli.world import world
from obliviate.data.importers import FORMATS
from obliviate.data.schema import load_items
from tests.data.importers import FIX


def run(group, *args):
    return CliRunner().invoke(group, [str(a) for a in args])


def good_line(i: int) -> str:
    return json.dumps({"id": f"i{i}", "entity": "p001", "attribute": "club", "kind": "shared", "language": "en",
                       "question": "Which club does Talen Brenik play for?",
                       "answer": "Talen Brenik plays for Aldmoor FC.", "value": "Aldmoor FC"})


@pytest.mark.parametrize("group,args,words", [
    (data, ["--help"], ["check"]),
    (data, ["check", "--help"], ["FILE", "items ok", "Exits 1"]),
    (world, ["--help"], ["build"]),
    (world, ["build", "--help"], ["--seed", "--players", "--languages", "--fake-language", "--fake-players",
                                  "--force"]),
    (import_cmd, ["--help"], [*FORMATS, "--image-root", "--players-from", "--kind", "--first-author", "--language",
                              "--progress"]),
])
def test_help(group, args, words):
    r = run(group, *args)
    assert r.exit_code == 0 and all(w in r.output for w in words), r.output


def test_data_check(tmp_path):
    ok = tmp_path / "ok.jsonl"
    ok.write_text("\n".join(good_line(i) for i in range(3)) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good_line(0) + "\n" + good_line(0) + "\n")
    r = run(data, "check", ok)
    assert r.exit_code == 0 and r.stdout == f"{ok}: 3 items ok\n"
    r = run(data, "check", bad, ok, tmp_path / "missing.jsonl")
    assert r.exit_code == 1
    assert r.stdout == f"{ok}: 3 items ok\n"
    assert r.stderr == (f"{bad}:2: duplicate id 'i0' (first on line 1)\n"
                        f"{tmp_path / 'missing.jsonl'}: cannot read (No such file or directory)\n")
    assert run(data, "check").exit_code == 2  # usage error: no FILE


def test_world_build(tmp_path):
    out = tmp_path / "w"
    r = run(world, "build", out, "--players", 8, "--seed", 5, "--languages", "en,zh", "--fake-language", "zh",
            "--fake-players", 2)
    assert r.exit_code == 0, r.output
    assert "8 players (2 fake, 1 forget, 5 retain)" in r.output and "learn.jsonl" in r.output
    summary = json.loads((out / "world.json").read_text(encoding="utf-8"))
    assert summary["seed"] == 5 and list(summary["languages"]) == ["en", "zh"]
    r = run(data, "check", *sorted(out.glob("*.jsonl")))
    assert r.exit_code == 0 and r.stdout.count("items ok") == 7
    r = run(world, "build", out, "--players", 8)
    assert r.exit_code == 1 and "already exists and is not empty" in r.output
    assert run(world, "build", out, "--players", 8, "--force").exit_code == 0
    r = run(world, "build", tmp_path / "x", "--languages", "de,fr")
    assert r.exit_code == 2 and "must include 'en'" in r.output
    r = run(world, "build", tmp_path / "x", "--fake-language", "xx")
    assert r.exit_code == 2 and "fake language 'xx'" in r.output
    assert not (tmp_path / "x").exists()


def test_import(tmp_path):
    out = tmp_path / "o" / "mc.jsonl"
    r = run(import_cmd, "offside-mc", FIX / "offside" / "mc.json", out)
    assert r.exit_code == 0 and r.output == f"wrote 5 items (2 entities, 2 images) to {out}\n", r.output
    assert len(load_items(out)) == 5
    out = tmp_path / "tofu.jsonl"
    r = run(import_cmd, "tofu", FIX / "tofu" / "forget01_perturbed.json", out)
    assert r.exit_code == 0 and r.output.splitlines() == [
        f"wrote 22 items (2 entities) to {out}", "  kind private (from the file name forget01; --kind to set)",
        "  authors 198-199 by record position, 20 records each (first author 198 from the file name); the last has "
        "2 of its 20; 22 of the 40 records TOFU's forget01 has: check that record 1 is about author 198",
        "  paraphrased answers (the truth ratio's base) on 22 of 22 records"]
    assert load_items(out)[-1].entity == "tofu_author_199"
    r = run(data, "check", out)  # the answer paraphrases pass the strict loader
    assert r.exit_code == 0 and r.stdout == f"{out}: 22 items ok\n"
    r = run(import_cmd, "tofu", FIX / "tofu" / "forget01_perturbed.json", tmp_path / "x.jsonl", "--first-author", 0)
    assert r.exit_code == 1 and "--first-author 0 contradicts the file name" in r.output
    r = run(import_cmd, "tofu", FIX / "news" / "news.json", tmp_path / "x.jsonl")
    assert r.exit_code == 1 and "news.json: not a TOFU file name" in r.output and "--kind" in r.output
    r = run(import_cmd, "tofu", FIX / "news" / "news.json", tmp_path / "x.jsonl", "--kind", "shared")
    assert r.exit_code == 1 and f"Error: {FIX / 'news' / 'news.json'}: record 1: missing 'question'" in r.output
    r = run(import_cmd, "news", FIX / "news" / "news.json", tmp_path / "x.jsonl", "--first-author", 3)
    assert r.exit_code == 2 and "--first-author does not apply to format news" in r.output
    assert not (tmp_path / "x.jsonl").exists()


def test_registered_in_main():
    """main.py registers the three commands. Importing it loads torch (seconds), so the import itself is checked only
    when torch is loaded already (the full suite); alone, the registration lines are checked in the source."""
    if "torch" in sys.modules:
        from obliviate.cli.main import cli
        assert cli.commands["data"] is data and cli.commands["world"] is world
        assert cli.commands["import"] is import_cmd
    src = (Path(__file__).parents[2] / "obliviate" / "cli" / "main.py").read_text()
    for line in ("from obliviate.cli.data import data", "from obliviate.cli.world import world",
                 "from obliviate.cli.importer import import_cmd", "cli.add_command(data)", "cli.add_command(world)",
                 'cli.add_command(import_cmd, name="import")'):
        assert line in src.splitlines()
