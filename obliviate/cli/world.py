"""`obliviate world ...`: the seeded embedded world (see obliviate.data.world)."""
from __future__ import annotations

import time

import click

from obliviate.data.world import FAKEABLE, WorldSpec, build_world

DEFAULT = WorldSpec()


@click.group("world")
def world():
    """The embedded synthetic world: fictional footballers, 9 languages, pictures, fake facts."""


@world.command("build")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=DEFAULT.seed, show_default=True, help="Same seed, same bytes.")
@click.option("--players", type=int, default=DEFAULT.players, show_default=True)
@click.option("--languages", default=",".join(DEFAULT.languages), show_default=True, metavar="CODES",
              help="Comma-separated, must include en.")
@click.option("--fake-language", default=DEFAULT.fake_language, show_default=True,
              help="The language the fakes are injected in.")
@click.option("--fake-players", type=int, default=None, help="Players with fake facts (default: players // 4).")
@click.option("--fake-attributes", default=",".join(DEFAULT.fake_attributes), show_default=True, metavar="ATTRS",
              help=f"Comma-separated, among {','.join(FAKEABLE)}.")
@click.option("--forget-players", type=int, default=None, help="OFFSIDE forget players (default: players // 8).")
@click.option("--images-per-player", type=int, default=None, help="Default: 1–3, drawn per player.")
@click.option("--test-variants", type=int, default=DEFAULT.test_variants, show_default=True,
              help="Held-out augmented copies per picture.")
@click.option("--train-variants", type=int, default=DEFAULT.train_variants, show_default=True,
              help="Augmented copies per picture added to learn.jsonl.")
@click.option("--low-resource-share", type=float, default=DEFAULT.low_resource_share, show_default=True,
              help="Share of players whose facts jv/ur/ha/hy learn.jsonl states.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def build(out, force, **options):
    """Write the world into OUT: learn/inject/forget/retain/relearn/test/probes.jsonl, images/, world.json."""
    t0 = time.perf_counter()
    try:
        summary = build_world(out, force=force, **options)
    except FileExistsError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    roles = summary["roles"]
    click.echo(f"{out}: seed {summary['seed']}, {len(summary['players'])} players ({len(roles['fake'])} fake, "
               f"{len(roles['forget'])} forget, {len(roles['retain'])} retain), languages "
               f"{','.join(summary['languages'])}, fakes in {summary['fake_language']} "
               f"({','.join(summary['fake_attributes'])}), {time.perf_counter() - t0:.1f} s")
    for name, c in summary["counts"].items():
        click.echo(f"  {name:<14} {c['items']:>6} items ({c['text']} text, {c['image']} image)")
