"""Run folders as transactions (obliviate.train.run_folder): what a job may do with --out, where it writes, what a
failure leaves, and what --resume accepts. No model: a job here is a block that writes files (or fails)."""
import json

import pytest

from obliviate.train.run_folder import DONE, decide, differences, open_run, plain_config
from obliviate.train.options import TrainOptions

CONFIG = plain_config("learn", model="/m", options=TrainOptions(steps=4), hashes={"data": "abc"}, data="i.jsonl")


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def finished_run(out, config=CONFIG):
    with open_run(out, config) as run:
        (run.work / "metrics.jsonl").write_text("{}\n")
    return out


def test_a_new_run_is_written_beside_and_appears_whole(tmp_path):
    out = tmp_path / "runs" / "a"
    with open_run(out, CONFIG) as run:
        assert not out.exists() and run.work.parent == out.parent and run.work.name.startswith(".tmp-a.")
        assert json.loads((run.work / "config.json").read_text()) == CONFIG
        assert (tmp_path / "runs" / ".a.lock").is_file()
        (run.work / "metrics.jsonl").write_text("{}\n")
    assert names(out) == ["config.json", DONE, "metrics.jsonl"] and names(out.parent) == ["a"]


def test_a_failed_run_leaves_nothing(tmp_path):
    """Issue 10: `--lr nan` / `--batch-size 0` / a full disk left config.json behind, which blocked the rerun."""
    out = tmp_path / "runs" / "a"
    with pytest.raises(OSError, match="No space left"):
        with open_run(out, CONFIG) as run:
            (run.work / "metrics.jsonl").write_text("{}\n")
            raise OSError(28, "No space left on device")
    assert names(tmp_path) == []  # not even runs/, which it made
    finished_run(out)  # the same command again just works


def test_a_checkpointing_run_is_written_in_place_and_kept_once_it_has_a_checkpoint(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(KeyboardInterrupt):
        with open_run(out, CONFIG, checkpoints=True) as run:
            assert run.work == out and (out / "config.json").is_file()
            raise KeyboardInterrupt  # before the first checkpoint: nothing to resume from, nothing stays
    assert names(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):
        with open_run(out, CONFIG, checkpoints=True) as run:
            (out / "ckpt-0000002").mkdir()
            raise KeyboardInterrupt
    assert names(out) == ["ckpt-0000002", "config.json"]  # unfinished: no marker, resumable
    with pytest.raises(FileExistsError, match="holds an unfinished run \\(continue it with --resume\\)"):
        decide(out, CONFIG, resume=False, force=False)
    with open_run(out, CONFIG, resume=True, checkpoints=True) as run:
        assert run.resume and run.work == out
    assert names(out) == ["config.json", DONE]  # finished: the checkpoints are superseded


@pytest.mark.parametrize("checkpoints", [False, True])
def test_force_replaces_a_run_only_when_the_new_one_succeeds(tmp_path, checkpoints):
    out = finished_run(tmp_path / "a")
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with open_run(out, CONFIG, force=True, checkpoints=checkpoints):
            raise RuntimeError("killed")
    assert (out / "old.txt").read_text() == "old" and names(tmp_path) == ["a"]
    with open_run(out, CONFIG, force=True, checkpoints=checkpoints) as run:
        (run.work / "new.txt").write_text("new")
    assert names(out) == ["config.json", DONE, "new.txt"] and names(tmp_path) == ["a"]


def test_what_a_job_may_do_with_its_folder(tmp_path):
    out = finished_run(tmp_path / "a")
    assert decide(tmp_path / "new", CONFIG, resume=False, force=False) == "new"
    assert decide(out, CONFIG, resume=True, force=False) == "finished"
    assert decide(out, CONFIG, resume=False, force=True) == "replace"
    with pytest.raises(FileExistsError, match="holds a finished run; use --force to replace it"):
        decide(out, CONFIG, resume=False, force=False)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("x")
    for force in (False, True):  # never someone else's folder
        with pytest.raises(FileExistsError, match="is not a run folder"):
            decide(tmp_path / "notes", CONFIG, resume=False, force=force)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        decide(tmp_path / "file", CONFIG, resume=False, force=False)


def test_resume_needs_the_same_model_data_and_options(tmp_path):
    """Issue 10: resuming with another --data or --lr continued silently; a finished run was retrained."""
    out = finished_run(tmp_path / "a")
    other_lr = plain_config("learn", model="/m", options=TrainOptions(steps=4, lr=1e-3), hashes={"data": "abc"},
                            data="i.jsonl")
    with pytest.raises(ValueError, match=r"options.lr: 0.0001 -> 0.001"):
        decide(out, other_lr, resume=True, force=False)
    edited = plain_config("learn", model="/m", options=TrainOptions(steps=4), hashes={"data": "xyz"},
                          data="i.jsonl")
    with pytest.raises(ValueError, match=r"hashes.data: 'abc' -> 'xyz'"):
        decide(out, edited, resume=True, force=False)
    renamed = plain_config("learn", model="/m", options=TrainOptions(steps=4, save_every=2), hashes={"data": "abc"},
                           data="./copy-of-i.jsonl")
    assert decide(out, renamed, resume=True, force=False) == "finished"  # same content, another name and cadence
    assert differences(CONFIG, renamed) == []
    with open_run(out, CONFIG, resume=True) as run:
        assert run.finished
    assert names(out) == ["config.json", DONE, "metrics.jsonl"]
