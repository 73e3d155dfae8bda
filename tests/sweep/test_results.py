"""The results table and its pivots: means weighted by probe counts, mean ± sample sd over seeds, baselines under
their stage's name, pooled axes named."""
import math

import pytest

from obliviate.sweep.results import ResultRow, pivot


def row(model, stage, coords, split, language, correct, n, says_fake=None):
    means, counts = {"correct": correct}, {"correct": n}
    if says_fake is not None:
        means["says_fake"], counts["says_fake"] = says_fake, n
    return ResultRow("text", model, stage, coords, split, language, "en" if language == "en" else "L", "text",
                     "shared", n, means, counts)


ROWS = [
    row("pretrained", "pretrain", {"method": None, "seed": None}, "forget", "en", 1.0, 10),
    row("pretrained", "pretrain", {"method": None, "seed": None}, "forget", "fr", 0.5, 30),
    row("u/ga0", "unlearn", {"method": "ga", "seed": "0"}, "forget", "en", 0.2, 10),
    row("u/ga0", "unlearn", {"method": "ga", "seed": "0"}, "forget", "fr", 0.6, 30),
    row("u/ga1", "unlearn", {"method": "ga", "seed": "1"}, "forget", "en", 0.4, 10),
    row("u/ga1", "unlearn", {"method": "ga", "seed": "1"}, "forget", "fr", 0.8, 30),
    row("u/ga1", "unlearn", {"method": "ga", "seed": "1"}, "retain", "en", 0.9, 10),
]


def test_mean_and_spread_over_seeds():
    t = pivot(ROWS, row_by="method", col_by="split")
    assert t.rows == ["pretrain", "ga"] and t.cols == ["forget", "retain"]
    assert t.mean[0][0] == pytest.approx((10 * 1.0 + 30 * 0.5) / 40)  # weighted by probe counts
    ga0, ga1 = (0.2 * 10 + 0.6 * 30) / 40, (0.4 * 10 + 0.8 * 30) / 40
    assert t.mean[1][0] == pytest.approx((ga0 + ga1) / 2)
    assert t.spread[1][0] == pytest.approx(abs(ga1 - ga0) / math.sqrt(2))  # sample sd of two values
    assert (t.n[1], t.spread[0][0], t.mean[0][1]) == ([2, 1], None, None)
    assert t.pooled == {"seed": ["0", "1"]}
    md = t.to_markdown()
    assert "| ga       | 60.0 ± 14.1 | 90.0   |" in md and "mean ± sd over seed (0, 1)" in md


def test_where_and_probe_columns():
    t = pivot(ROWS, row_by="seed", col_by="language", where={"method": "ga", "split": "forget"})
    assert t.rows == ["0", "1"] and t.cols == ["en", "fr"] and t.mean[0] == [pytest.approx(0.2), pytest.approx(0.6)]
    assert t.pooled == {} and "(method=ga, split=forget)" in t.to_markdown()


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown column 'lr'; columns: method, seed, eval"):
        pivot(ROWS, row_by="lr", col_by="split")
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        pivot(ROWS, row_by="method", col_by="split", metric="accuracy")


def test_table_round_trip():
    r = ROWS[2]
    back = ResultRow.from_dict(r.to_dict(), ["method", "seed"])
    assert back == r and r.to_dict()["method"] == "ga" and r.to_dict()["n_correct"] == 10
