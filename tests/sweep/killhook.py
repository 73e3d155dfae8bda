"""A sitecustomize for the sweep's worker processes in tests: with KILL_TOKEN set, the first process whose training
loop saves the checkpoint of step KILL_AT_STEP creates the token file and SIGKILLs itself (so exactly one cell dies,
at a known step, whatever the timing); with SAVES_LOG set, every checkpoint save appends "RUN_DIR STEP" to it."""
import importlib.abc
import importlib.machinery
import os
import signal
import sys


def _patch(module):
    save = module.save_checkpoint

    def save_then_maybe_die(run_dir, step, *args, **kwargs):
        path = save(run_dir, step, *args, **kwargs)
        if os.environ.get("SAVES_LOG"):
            with open(os.environ["SAVES_LOG"], "a") as f:
                f.write(f"{run_dir} {step}\n")
        if os.environ.get("KILL_TOKEN") and step == int(os.environ["KILL_AT_STEP"]):
            try:
                os.close(os.open(os.environ["KILL_TOKEN"], os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return path
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    module.save_checkpoint = save_then_maybe_die


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "obliviate.train.loop":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("KILL_TOKEN") or os.environ.get("SAVES_LOG"):
    sys.meta_path.insert(0, _Hook())
