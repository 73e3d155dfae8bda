"""`obliviate world ...`: the seeded embedded world (see obliviate.data.world.build)."""
from __future__ import annotations

import time

import click

from obliviate.data.schema import LANGUAGES
from obliviate.data.world.build import FAKEABLE, build_world


@click.group("world")
def world():
    """The embedded synthetic world: fictional footballers, 9 languages, pictures, fake facts."""


@world.command("build")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--players", type=int, default=40, show_default=True)
@click.option("--languages", default=None, metavar="CODES",
              help=f"Comma-separated, must include en (default: all of {','.join(LANGUAGES)}).")
@click.option("--fake-language", default="fr", show_default=True, help="The language the fakes are injected in.")
@click.option("--fake-players", type=int, default=None, help="Players with fake facts (default: players // 4).")
@click.option("--fake-attributes", default=None, metavar="ATTRS",
              help=f"Comma-separated, among {','.join(FAKEABLE)} (default: club,nationality).")
@click.option("--forget-players", type=int, default=None, help="OFFSIDE forget players (default: players // 8).")
@click.option("--images-per-player", type=int, default=None, help="Default: 1–3, drawn per player.")
@click.option("--test-variants", type=int, default=None, help="Held-out augmented copies per picture (default 2).")
@click.option("--train-variants", type=int, default=None,
              help="Augmented copies per picture added to learn.jsonl (default 0).")
@click.option("--low-resource-share", type=float, default=None,
              help="Share of players whose facts jv/ur/ha/hy learn.jsonl states (default 0.5).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists and is not empty.")
def build(out, seed, players, languages, fake_language, fake_players, fake_attributes, forget_players,
          images_per_player, test_variants, train_variants, low_resource_share, force):
    """Write the world into OUT: learn/inject/forget/retain/relearn/test/probes.jsonl, images/, world.json."""
    t0 = time.perf_counter()
    try:
        summary = build_world(out, seed=seed, players=players, languages=languages,
                              fake_language=fake_language, fake_players=fake_players, forget_players=forget_players,
                              fake_attributes=fake_attributes, images_per_player=images_per_player,
                              test_variants=test_variants, train_variants=train_variants,
                              low_resource_share=low_resource_share, force=force)
    except FileExistsError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    roles = summary["roles"]
    click.echo(f"{out}: seed {seed}, {len(summary['players'])} players ({len(roles['fake'])} fake, "
               f"{len(roles['forget'])} forget, {len(roles['retain'])} retain), languages "
               f"{','.join(summary['languages'])}, fakes in {summary['fake_language']} "
               f"({','.join(summary['fake_attributes'])}), {time.perf_counter() - t0:.1f} s")
    for name, c in summary["counts"].items():
        click.echo(f"  {name:<14} {c['items']:>6} items ({c['text']} text, {c['image']} image)")
