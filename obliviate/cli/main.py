"""The `obliviate` console script: one click group, one sub-module per command group."""
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
