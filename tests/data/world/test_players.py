"""The world's players (obliviate.data.world.players): consistent facts, every club and country used, players of a
club told apart by their looks."""
from datetime import date

from obliviate.data.world.players import age_on, domains, make_players
from obliviate.data.world.text import CLUBS, COUNTRIES


def test_facts_consistent():
    players = make_players(0, 40)
    countries = {c: set(cities) for c, cities in COUNTRIES}
    for p in players:
        f = p.facts
        assert f["birthplace"] in countries[f["nationality"]] and f["transfer_club"] != f["club"]
        assert int(f["age"]) == age_on(f["birth_date"])
        assert all(v in domains(players)[a] for a, v in f.items())
    assert {p.facts["club"] for p in players} == {c[0] for c in CLUBS}  # every club is someone's club
    assert {p.facts["nationality"] for p in players} == {c[0] for c in COUNTRIES}
    assert [p.id for p in players][:2] == ["p000", "p001"] and len({p.name for p in players}) == 40
    assert {p.role for p in players} == {"retain"}
    for club in CLUBS:  # pattern × hair and shirt number tell the players of a club apart
        looks = [p.look for p in players if p.facts["club"] == club[0]]
        assert len({(lk.pattern, lk.hair) for lk in looks}) == len(looks) == len({lk.number for lk in looks})


def test_seeded():
    assert make_players(4, 12) == make_players(4, 12) != make_players(5, 12)
    assert age_on("2000-07-02", date(2025, 7, 1)) == 24 and age_on("2000-07-01", date(2025, 7, 1)) == 25
