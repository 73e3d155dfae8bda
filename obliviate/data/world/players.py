"""The embedded world's players: their value sets, their facts and their looks, drawn from a seed.

Values come from small closed sets so they repeat across players (a tiny model can learn them), and every club and
country is someone's true value. Within a club, pattern × hair and the shirt number tell the players apart.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from obliviate.data.world.images import HAIR, PATTERNS, SKIN, Look
from obliviate.data.world.text import CLUBS, COUNTRIES, FIRST_NAMES, SURNAMES

REFERENCE_DATE = date(2025, 7, 1)  # "today" in the world: ages are counted to it
POSITIONS = ("goalkeeper", "defender", "midfielder", "forward")
FEET = ("left", "right")
BIRTH_DATES = ("1994-02-11", "1995-09-03", "1996-05-27", "1997-11-08", "1998-03-12", "1999-07-19", "2000-01-25",
               "2000-10-06", "2001-06-14", "2002-12-30", "2003-04-02", "2004-08-21")
HEIGHTS = tuple(str(h) for h in range(168, 198, 2))
TRANSFER_FEES = ("€5M", "€8M", "€12M", "€15M", "€20M", "€25M", "€30M", "€40M", "€50M", "€60M")
TRANSFER_DATES = ("2025-07-01", "2025-07-15", "2025-08-01", "2025-08-31", "2026-01-02", "2026-01-15", "2026-01-31",
                  "2026-07-01")
MARKET_VALUES = ("€6M", "€10M", "€15M", "€20M", "€30M", "€45M", "€60M", "€75M", "€90M", "€120M")
TROPHIES = tuple(str(n) for n in range(2, 10))


def age_on(birth: str, today: date = REFERENCE_DATE) -> int:
    b = date.fromisoformat(birth)
    return today.year - b.year - ((today.month, today.day) < (b.month, b.day))


@dataclass
class Player:
    id: str
    name: str
    facts: dict[str, str]  # attribute -> language-independent value (position/foot: a key of WORDS)
    look: Look
    role: str = "retain"  # "fake" | "forget" | "retain"
    fakes: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)     # original pictures, relative to the world folder
    heldout: list[list[str]] = field(default_factory=list)  # per original: its held-out variants
    augmented: list[list[str]] = field(default_factory=list)  # per original: extra training variants


def domains(players: list[Player]) -> dict[str, tuple[str, ...]]:
    """Every value an attribute can take in this world (the pool of multiple-choice distractors)."""
    clubs = tuple(c[0] for c in CLUBS)
    return {"name": tuple(p.name for p in players), "club": clubs, "transfer_club": clubs, "position": POSITIONS,
            "nationality": tuple(c[0] for c in COUNTRIES), "birthplace": tuple(x for c in COUNTRIES for x in c[1]),
            "birth_date": BIRTH_DATES, "age": tuple(sorted({str(age_on(b)) for b in BIRTH_DATES}, key=int)),
            "height": HEIGHTS, "foot": FEET, "transfer_fee": TRANSFER_FEES, "transfer_date": TRANSFER_DATES,
            "market_value": MARKET_VALUES, "trophies": TROPHIES}


def make_players(seed: int, n: int) -> list[Player]:
    """`n` players p000, p001, ... with unique names, their facts and looks (all roles "retain")."""
    rng = random.Random(f"obliviate-world:{seed}:players")
    surnames = [s for _ in range(-(-n // len(SURNAMES))) for s in rng.sample(SURNAMES, len(SURNAMES))][:n]
    names: list[str] = []
    for s in surnames:
        name = f"{rng.choice(FIRST_NAMES)} {s}"
        while name in names:
            name = f"{rng.choice(FIRST_NAMES)} {s}"
        names.append(name)
    clubs = [CLUBS[i % len(CLUBS)] for i in range(n)]
    rng.shuffle(clubs)
    countries = [COUNTRIES[i % len(COUNTRIES)] for i in range(n)]
    rng.shuffle(countries)
    players = []
    for i in range(n):
        club, country = clubs[i], countries[i]
        birth = rng.choice(BIRTH_DATES)
        facts = {
            "club": club[0], "position": rng.choices(POSITIONS, weights=(1, 3, 3, 3))[0], "nationality": country[0],
            "birthplace": rng.choice(country[1]), "birth_date": birth, "age": str(age_on(birth)),
            "height": rng.choice(HEIGHTS), "foot": rng.choices(FEET, weights=(3, 7))[0],
            "transfer_club": rng.choice([c[0] for c in CLUBS if c[0] != club[0]]),
            "transfer_fee": rng.choice(TRANSFER_FEES), "transfer_date": rng.choice(TRANSFER_DATES),
            "market_value": rng.choice(MARKET_VALUES), "trophies": rng.choice(TROPHIES)}
        look = Look(kit=club[1], trim=club[2], pattern="", hair="", skin=rng.choice(SKIN), number=0)
        players.append(Player(id=f"p{i:03d}", name=names[i], facts=facts, look=look))
    # pattern × hair and the shirt number are unique within a club (pattern × hair repeats past 20 players a club)
    combos = [(p, h) for p in PATTERNS for h in HAIR]
    for club in CLUBS:
        members = [p for p in players if p.facts["club"] == club[0]]
        order = rng.sample(combos, len(combos))
        numbers = rng.sample(range(1, 100), min(len(members), 99))
        for j, p in enumerate(members):
            pattern, hair = order[j % len(order)]
            p.look = Look(p.look.kit, p.look.trim, pattern, hair, p.look.skin, numbers[j % len(numbers)])
    return players
