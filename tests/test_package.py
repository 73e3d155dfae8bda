"""The top-level package: lazy public names, and `obliviate --help` / `--version` for every command."""
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import obliviate
from obliviate.cli.main import cli


@pytest.mark.parametrize("name", [n for n in obliviate.__all__ if n != "__version__"])
def test_public_names_resolve(name):
    assert getattr(obliviate, name) is not None


def test_import_does_not_load_torch():
    code = "import sys, obliviate; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", list(_commands(cli)), ids=" ".join)
def test_every_command_has_help(path):
    res = CliRunner().invoke(cli, [*path, "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output, res.output


def test_version():
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and obliviate.__version__ in res.output


def test_help_of_every_command_imports_neither_torch_nor_transformers():
    """`--help` stays instant: the CLI modules import only option dataclasses and constants at import time."""
    code = ("import sys, click\nfrom obliviate.cli.main import cli\n"
            "def walk(group, prefix=()):\n"
            "    for name, cmd in group.commands.items():\n"
            "        yield prefix + (name,)\n"
            "        if isinstance(cmd, click.Group):\n"
            "            yield from walk(cmd, prefix + (name,))\n"
            "for path in [()] + list(walk(cli)):\n"
            "    try:\n"
            "        cli.main([*path, '--help'], standalone_mode=False)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'vllm', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
