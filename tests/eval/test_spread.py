"""Numbers over several runs (obliviate.eval.spread): hand values, shapes, missing cells, formatting."""
import math

import pytest

from obliviate.eval.spread import Spread, combine, combine_tables, spread
from obliviate.eval.views import Table


def test_spread_hand_values():
    s = spread([0.75, 0.8, 0.7])
    assert (s.mean, s.std, s.min, s.max, s.n) == pytest.approx((0.75, 0.05, 0.7, 0.8, 3))
    assert spread([0.5]) == Spread(0.5, 0.0, 0.5, 0.5, 1)
    assert spread([None, 1.0, None, 3.0]) == Spread(2.0, math.sqrt(2.0), 1.0, 3.0, 2)
    assert spread([None, None]) is None and spread([]) is None
    assert spread([True, False, True]).mean == pytest.approx(2 / 3)


def test_format():
    s = spread([0.75, 0.8, 0.7])
    assert s.format(scale=100) == "75.0 ± 5.0"
    assert s.format(scale=100, show_range=True) == "75.0 ± 5.0 (70.0–80.0)"
    assert spread([0.123]).format(scale=100, digits=2, show_range=True) == "12.30"


def test_combine_nested_runs():
    # the shape of demo_tables.misinformation_table's numbers: {model: {group: (fake, truth, n)}}
    runs = [{"ga": {"en": (0.2, 0.5, 20), "L": (0.1, 0.4, 20)}},
            {"ga": {"en": (0.4, 0.7, 20), "L": (None, None, 0)}},
            {"ga": {"en": (0.3, 0.6, 20)}, "npo": {"en": (0.0, 1.0, 20)}}]
    got = combine(runs)
    assert list(got) == ["ga", "npo"] and list(got["ga"]) == ["en", "L"]
    fake, truth, n = got["ga"]["en"]
    assert (fake.mean, fake.std, fake.min, fake.max, fake.n) == pytest.approx((0.3, 0.1, 0.2, 0.4, 3))
    assert truth.mean == pytest.approx(0.6) and n == Spread(20.0, 0.0, 20.0, 20.0, 3)
    assert got["ga"]["L"][0] == Spread(0.1, 0.0, 0.1, 0.1, 1)  # the other runs had no such cell
    assert got["npo"]["en"][0].n == 1
    assert combine([[1, 2], [3, 4]]) == [spread([1, 3]), spread([2, 4])]
    assert combine([None, None]) is None
    with pytest.raises(ValueError, match="different lengths"):
        combine([(1, 2), (1, 2, 3)])
    with pytest.raises(ValueError, match="differ in shape"):
        combine([{"a": 1}, 2])
    with pytest.raises(ValueError, match="no runs"):
        combine([])


def table(values, rows=("base", "ga"), cols=("en", "fr"), title="correct by probe language (forget)"):
    return Table(title, "correct", "model", "language", list(rows), list(cols), values,
                 [[1] * len(cols) for _ in rows])


def test_combine_tables():
    t = combine_tables([table([[1.0, 0.5], [0.2, None]]), table([[0.8, 0.5], [0.4, None]]),
                        table([[0.9], [0.6], [0.3]], rows=("base", "ga", "npo"), cols=("en",))])
    assert t.rows == ["base", "ga", "npo"] and t.cols == ["en", "fr"] and t.runs == 3
    assert t.counts == [[3, 2], [3, 2], [1, 0]] and t.title == "correct by probe language (forget)"
    assert t.cell("base", "en") == spread([1.0, 0.8, 0.9]) and t.cell("ga", "fr") is None
    assert t.cell("npo", "en") == Spread(0.3, 0.0, 0.3, 0.3, 1) and t.cell("npo", "fr") is None
    assert t.cell("ga", "en").format(scale=100, show_range=True) == "40.0 ± 20.0 (20.0–60.0)"
    with pytest.raises(ValueError, match="tables differ"):
        combine_tables([table([[1.0, 1.0], [1.0, 1.0]]), table([[1.0, 1.0], [1.0, 1.0]], title="other")])
    with pytest.raises(ValueError, match="no tables"):
        combine_tables([])
