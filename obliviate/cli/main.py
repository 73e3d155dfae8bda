"""The `obliviate` console script: one click group, one sub-module per command group.

Every command ends a failure it can name in one line (`Error: <file>: <problem>`) and exit status 1: the commands
turn bad input (ValueError) into that line, and the group does it for what the file system says (OSError: disk full,
permission, a locked output, see `files.FolderBusy`). SIGTERM ends a command like Ctrl-C does, so its temporaries
are removed on the way out.
"""
import signal
import sys

import click

from obliviate import __version__
from obliviate.cli.bench import bench
from obliviate.cli.data import data
from obliviate.cli.demo import demo
from obliviate.cli.evaluate import eval_cmd, report
from obliviate.cli.importer import import_cmd
from obliviate.cli.model import model
from obliviate.cli.sweep import sweep
from obliviate.cli.train import learn, relearn, unlearn
from obliviate.cli.world import world


def os_error_line(err: OSError) -> str:
    """One line for a file-system error: `file: problem` where the error names a file."""
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def _terminate(signum, frame):
    sys.exit(128 + signum)  # unwinds like an exception: context managers clean up


class Commands(click.Group):
    """The `obliviate` group: file-system errors end in one line, not a traceback."""

    def invoke(self, ctx):
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return super().invoke(ctx)
        except OSError as err:
            raise click.ClickException(os_error_line(err)) from err
        finally:
            signal.signal(signal.SIGTERM, previous)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="obliviate")
def cli():
    """Unlearn misinformation and private facts from (vision-)language models, then prove they are gone."""


cli.add_command(demo)
cli.add_command(learn)
cli.add_command(unlearn)
cli.add_command(relearn)
cli.add_command(model)
cli.add_command(data)
cli.add_command(world)
cli.add_command(import_cmd, name="import")
cli.add_command(bench)
cli.add_command(eval_cmd, name="eval")
cli.add_command(report)
cli.add_command(sweep)

if __name__ == "__main__":
    cli()
