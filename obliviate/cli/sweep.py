"""`obliviate sweep GRID --out DIR`: run an experiment grid (see obliviate/sweep/)."""
from __future__ import annotations

import click


@click.command("sweep")
@click.argument("grid", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The sweep folder (created; rerun "
              "into the same folder to resume).")
@click.option("--dry-run", is_flag=True, help="List the cells and what is already done; run nothing.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Cells at a time: local processes (one per GPU when there are GPUs, else --threads CPU threads "
                   "each), or cells at a time on a local Ray instance.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads per cell (without GPUs). Results depend on it (the order of float sums), not on "
                   "--workers.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run cells as Ray tasks: a local instance (no ADDRESS), or the cluster at ADDRESS "
                   "(auto, ray://HEAD:10001).")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Give one of the grid's [vars] another value (a TOML value: 1, 2e-3, [\"en\", \"fr\"]; "
                   "anything else is a string). Repeatable.")
@click.option("--no-progress", is_flag=True, help="No overall bar (one line per cell only).")
def sweep(grid, out, dry_run, workers, threads, ray_address, settings, no_progress):
    """Run every cell of an experiment grid (a TOML file: models, data, stages, axes; see the README's "Experiment
    grids"): finished cells are skipped, killed ones resume from their checkpoint, a failed one is reported and the
    others go on. Then every adapter is evaluated and OUT/results.jsonl written (`obliviate report OUT`)."""
    from obliviate.sweep.grid import GridError, parse_vars
    from obliviate.sweep.run import Sweep

    try:
        plan = Sweep(grid, vars=parse_vars(settings))
        if dry_run:
            _echo_status(plan.status(out))
            return
        result = plan.run(out, workers=workers, threads=threads, ray=ray_address, progress=not no_progress, echo=click.echo)
    except (GridError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    done = sum(o.state in ("done", "skipped") for o in result.outcomes)
    click.echo(f"{done}/{len(result.outcomes)} cells finished in {result.seconds:.0f}s ({result.where})")
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} cell(s) did not finish: "
                                   + ", ".join(f"{o.cell.id} ({o.state})" for o in result.failed))


def _echo_status(statuses) -> None:
    width = max(len(s.cell.id) for s in statuses)
    for s in statuses:
        click.echo(f"{s.state:<8} {s.cell.id:<{width}}  {s.cell.run_dir}" + (f"  {s.detail}" if s.detail else ""))
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    click.echo(f"{len(statuses)} cells: " + ", ".join(f"{n} {state}" for state, n in counts.items()))

