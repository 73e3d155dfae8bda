"""The embedded world (DESIGN.md §5): a seeded, byte-for-byte reproducible synthetic football world in the shape of
Learn and Unlearn (true facts in 9 languages, fakes injected in one) and OFFSIDE (players with shared and private
attributes, pictures, forget / retain / relearn / augmented-test splits).

    summary = build_world("world", seed=0)          # or: obliviate world build world --seed 0

Players have 8 shared text attributes (club, position, nationality, birthplace, birth date, age, height, foot), 5
private ones (transfer club, transfer fee, transfer date, market value, trophies) and, on pictures only, their name.
Values come from small closed sets so they repeat across players (a tiny model can learn them); every club and
country is someone's true value, and a fake always names a value that another player truly has, so its tokens are
known. Text items use the native templates of `world_text`; picture items are in English ("the player in this
picture") — a picture has no language of its own, and one picture language keeps image/text comparisons clean.

Low-resource languages (jv, ur, ha, hy) get less training text, as in Lu & Koehn: in learn.jsonl only the first
question template (high-resource languages and English have two) and only a seeded share of the players
(`low_resource_share`, default ½); the other players' facts can reach them only by transfer from other languages.
Tests and probes cover every player in every language.

Roles are disjoint: fake players (misinformation injected about them), forget players (OFFSIDE-style unlearning),
retain players (the rest); relearn players are a seeded half of the forget players. Files (all pass `load_items`):
learn (true world), inject (fakes, fake language only), forget (fakes in every language with `truth`, then the
forget players' learn items), retain, relearn (their English first-template and first-picture items), test (the
held-out paraphrase question, held-out picture variants), probes (every player × attribute × language with
`paraphrases`, `perturbed` and `options`, plus every picture and variant; fake players' faked attributes carry
value = fake and truth = true), world.json (parameters, entities, players, roles, counts) and images/.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from obliviate.data.schema import LANGUAGES, Item, write_items
from obliviate.data.world.images import HAIR, PATTERNS, SKIN, Look, augment, png_bytes, random_pose, render
from obliviate.data.world.text import CLUBS, COUNTRIES, FIRST_NAMES, IMAGE_TEXT, SURNAMES, TEXT, WORDS, extras

FORMAT = "obliviate-world/1"
SHARED = ("club", "position", "nationality", "birthplace", "birth_date", "age", "height", "foot")
PRIVATE = ("transfer_club", "transfer_fee", "transfer_date", "market_value", "trophies")
TEXT_ATTRIBUTES = SHARED + PRIVATE
IMAGE_ATTRIBUTES = ("name",) + TEXT_ATTRIBUTES
FAKEABLE = ("club", "nationality", "birthplace", "transfer_club")  # attributes whose values are world entities
FORMS = ("q1", "q2", "p")  # learn question 1, learn question 2, held-out paraphrase

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


def _domains(players: list[Player]) -> dict[str, tuple[str, ...]]:
    clubs = tuple(c[0] for c in CLUBS)
    return {"name": tuple(p.name for p in players), "club": clubs, "transfer_club": clubs, "position": POSITIONS,
            "nationality": tuple(c[0] for c in COUNTRIES), "birthplace": tuple(x for c in COUNTRIES for x in c[1]),
            "birth_date": BIRTH_DATES, "age": tuple(sorted({str(age_on(b)) for b in BIRTH_DATES}, key=int)),
            "height": HEIGHTS, "foot": FEET, "transfer_fee": TRANSFER_FEES, "transfer_date": TRANSFER_DATES,
            "market_value": MARKET_VALUES, "trophies": TROPHIES}


def _render(attribute: str, key: str, lang: str) -> str:
    """The value as written in `lang`: native words for position/foot, the shared string otherwise."""
    return WORDS[lang][attribute][key] if attribute in ("position", "foot") else key


def _make_players(seed: int, n: int) -> list[Player]:
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


class _Items:
    """Item factory: templates + per-(player, attribute) distractors, fixed once so every language and file agree."""

    def __init__(self, seed: int, players: list[Player]):
        self.seed, self.domains, self._mc = seed, _domains(players), {}

    def _choices(self, p: Player, attribute: str, fake: bool) -> tuple[str, list[str], list[str]]:
        """(correct key, 3 wrong keys, the 4 option keys in MC order); for a fake the truth is a wrong key."""
        k = (p.id, attribute, fake)
        if k not in self._mc:
            rng = random.Random(f"obliviate-world:{self.seed}:mc:{p.id}:{attribute}:{int(fake)}")
            truth = p.name if attribute == "name" else p.facts[attribute]
            correct = p.fakes[attribute] if fake else truth
            pool = [v for v in self.domains[attribute] if v not in (correct, truth)]
            wrong = ([truth] if fake else []) + rng.sample(pool, min(len(pool), 3 - fake))
            options = [correct] + wrong
            rng.shuffle(options)
            self._mc[k] = (correct, wrong, options)
        return self._mc[k]

    def text(self, p: Player, attribute: str, lang: str, form: str, *, fake: bool = False,
             paraphrases: bool = False) -> Item:
        templates = TEXT[lang][attribute]
        key, wrong, options = self._choices(p, attribute, fake)

        def say(k: str) -> str:
            v = _render(attribute, k, lang)
            return templates[3].format(name=p.name, value=v, **extras(lang, attribute, v))

        return Item(id=f"{p.id}.{attribute}.{lang}.{form}" + (".fake" if fake else ""), entity=p.id,
                    attribute=attribute, kind="shared" if attribute in SHARED else "private", language=lang,
                    question=templates[FORMS.index(form)].format(name=p.name), answer=say(key),
                    value=_render(attribute, key, lang),
                    truth=_render(attribute, p.facts[attribute], lang) if fake else None,
                    paraphrases=[templates[i].format(name=p.name) for i in (1, 2)] if paraphrases else [],
                    perturbed=[say(k) for k in wrong], options=[_render(attribute, k, lang) for k in options])

    def image(self, p: Player, attribute: str, image: str, tag: str, *, fake: bool = False) -> Item:
        question, answer = IMAGE_TEXT[attribute]
        key, wrong, options = self._choices(p, attribute, fake)
        value = _render(attribute, key, "en")
        return Item(id=f"{p.id}.{attribute}.en.{tag}" + (".fake" if fake else ""), entity=p.id,
                    attribute=attribute, kind="private" if attribute in PRIVATE else "shared", language="en",
                    question=question, answer=answer.format(value=value), value=value, image=image,
                    truth=_render(attribute, p.facts[attribute], "en") if fake else None,
                    perturbed=[answer.format(value=_render(attribute, k, "en")) for k in wrong],
                    options=[_render(attribute, k, "en") for k in options])


def _check(languages, fake_language, players, fake_players, forget_players, fake_attributes, images_per_player,
           test_variants, train_variants, low_resource_share, image_size, seed):
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    unknown = [x for x in languages if x not in LANGUAGES]
    if unknown or not languages:
        raise ValueError(f"languages must be among {', '.join(LANGUAGES)}; got {', '.join(languages) or 'none'}")
    if "en" not in languages:
        raise ValueError("languages must include 'en' (the pivot language: unlearning in en / L / en+L, pictures)")
    if fake_language not in languages:
        raise ValueError(f"fake language {fake_language!r} is not among the world's languages "
                         f"({', '.join(languages)})")
    if not 3 <= players <= 1000:
        raise ValueError(f"players must be between 3 and 1000, got {players}")
    if fake_players < 1 or forget_players < 1 or fake_players + forget_players > players - 1:
        raise ValueError(f"need ≥ 1 fake, ≥ 1 forget and ≥ 1 retain player: {fake_players} fake + {forget_players} "
                         f"forget of {players} players")
    bad = [a for a in fake_attributes if a not in FAKEABLE]
    if bad or not fake_attributes:
        raise ValueError(f"fake attributes must be among {', '.join(FAKEABLE)}; got {', '.join(fake_attributes)}")
    if images_per_player is not None and not 0 <= images_per_player <= 9:
        raise ValueError(f"images_per_player must be between 0 and 9, got {images_per_player}")
    if not (0 <= test_variants <= 99 and 0 <= train_variants <= 99):
        raise ValueError("test_variants and train_variants must be between 0 and 99")
    if not 0.0 <= low_resource_share <= 1.0:
        raise ValueError(f"low_resource_share must be in [0, 1], got {low_resource_share}")
    if not 28 <= image_size <= 1024:
        raise ValueError(f"image_size must be between 28 and 1024, got {image_size}")


def build_world(out_dir: str | Path, *, seed: int = 0, players: int = 40, languages=None, fake_language: str = "fr",
                fake_players: int | None = None, forget_players: int | None = None, fake_attributes=None,
                images_per_player: int | None = None, test_variants: int | None = None,
                train_variants: int | None = None, low_resource_share: float | None = None,
                image_size: int | None = None, force: bool = False) -> dict:
    """Write the world into `out_dir` and return its summary (the content of world.json).

    Defaults: all 9 languages; fake_players = players // 4; forget_players = players // 8 (≥ 1 each);
    fake_attributes = (club, nationality); images_per_player drawn from 1–3 per player; test_variants = 2 held-out
    augmented copies of each picture; train_variants = 0 augmented copies added to learn.jsonl (raise it to ~8–24
    for image generalisation, DESIGN §5); low_resource_share = 0.5; image_size = 56.
    The tree is built in a temporary sibling folder and renamed into place, so `out_dir` is never half-written.
    An existing non-empty `out_dir` is an error unless `force` (then it is replaced)."""
    if isinstance(languages, str):
        languages = [c.strip() for c in languages.split(",") if c.strip()]
    if languages is None:
        languages = list(LANGUAGES)
    else:  # canonical order, unknown codes kept for the error message
        languages = [c for c in LANGUAGES if c in languages] + [c for c in languages if c not in LANGUAGES]
    fake_players = max(1, players // 4) if fake_players is None else fake_players
    forget_players = max(1, players // 8) if forget_players is None else forget_players
    if isinstance(fake_attributes, str):
        fake_attributes = [a.strip() for a in fake_attributes.split(",") if a.strip()]
    fake_attributes = list(fake_attributes) if fake_attributes is not None else ["club", "nationality"]
    fake_attributes = [a for a in FAKEABLE if a in fake_attributes] + [a for a in fake_attributes if a not in FAKEABLE]
    test_variants = 2 if test_variants is None else test_variants
    train_variants = 0 if train_variants is None else train_variants
    low_resource_share = 0.5 if low_resource_share is None else low_resource_share
    image_size = 56 if image_size is None else image_size
    _check(languages, fake_language, players, fake_players, forget_players, fake_attributes, images_per_player,
           test_variants, train_variants, low_resource_share, image_size, seed)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"{out}: already exists and is not empty (use --force / force=True to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        summary = _write(tmp, seed=seed, n_players=players, languages=languages, fake_language=fake_language,
                         n_fake=fake_players, n_forget=forget_players, fake_attributes=fake_attributes,
                         images_per_player=images_per_player, test_variants=test_variants,
                         train_variants=train_variants, low_resource_share=low_resource_share,
                         image_size=image_size)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.rmdir(old)
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _write(root: Path, *, seed, n_players, languages, fake_language, n_fake, n_forget, fake_attributes,
           images_per_player, test_variants, train_variants, low_resource_share, image_size) -> dict:
    players = _make_players(seed, n_players)
    by_id = {p.id: p for p in players}
    rng = random.Random(f"obliviate-world:{seed}:roles")
    order = rng.sample([p.id for p in players], len(players))
    fake_ids, forget_ids = sorted(order[:n_fake]), sorted(order[n_fake:n_fake + n_forget])
    for pid in fake_ids:
        by_id[pid].role = "fake"
    for pid in forget_ids:
        by_id[pid].role = "forget"
    relearn_ids = sorted(rng.sample(forget_ids, -(-len(forget_ids) // 2)))
    low_ids = set(rng.sample([p.id for p in players], round(low_resource_share * len(players))))
    # fakes: another player's true value, never the player's own (nor his club <-> transfer club)
    rng = random.Random(f"obliviate-world:{seed}:fakes")
    for pid in fake_ids:
        p = by_id[pid]
        for a in fake_attributes:
            avoid = {p.facts[a], p.facts.get({"club": "transfer_club", "transfer_club": "club"}.get(a, a))}
            pool = sorted({q.facts[a] for q in players if q.id != pid} - avoid)
            p.fakes[a] = rng.choice(pool)
    # pictures
    (root / "images").mkdir()
    rng = random.Random(f"obliviate-world:{seed}:images")
    for i, p in enumerate(players):
        k_images = rng.randint(1, 3) if images_per_player is None else images_per_player
        for k in range(1, k_images + 1):
            im = render(p.look, random_pose(rng, image_size), size=image_size)
            p.images.append(_save(root, f"images/{p.id}_{k}.png", im))
            p.heldout.append([_save(root, f"images/{p.id}_{k}_h{j}.png",
                                    augment(im, np.random.default_rng([seed, i, k, 1, j])))
                              for j in range(1, test_variants + 1)])
            p.augmented.append([_save(root, f"images/{p.id}_{k}_a{j}.png",
                                      augment(im, np.random.default_rng([seed, i, k, 2, j])))
                                for j in range(1, train_variants + 1)])
    make = _Items(seed, players)
    low = {c for c in languages if LANGUAGES[c].resource == "low"}

    def learn_items(p: Player) -> list[Item]:
        items = [make.text(p, a, lang, form) for a in TEXT_ATTRIBUTES for lang in languages
                 if lang not in low or p.id in low_ids for form in (("q1",) if lang in low else ("q1", "q2"))]
        for k, image in enumerate(p.images, 1):
            items += [make.image(p, a, image, f"i{k}") for a in IMAGE_ATTRIBUTES]
            items += [make.image(p, a, aug, f"i{k}a{j}") for j, aug in enumerate(p.augmented[k - 1], 1)
                      for a in IMAGE_ATTRIBUTES]
        return items

    def fake_items(p: Player, langs) -> list[Item]:
        return [make.text(p, a, lang, form, fake=True) for a in fake_attributes for lang in langs
                for form in ("q1", "q2")]

    learned = {p.id: learn_items(p) for p in players}
    fakes = [by_id[pid] for pid in fake_ids]
    files = {
        "learn.jsonl": [it for p in players for it in learned[p.id]],
        "inject.jsonl": [it for p in fakes for it in fake_items(p, [fake_language])],
        "forget.jsonl": [it for p in fakes for it in fake_items(p, languages)]
                        + [it for pid in forget_ids for it in learned[pid]],
        "retain.jsonl": [it for p in players if p.role == "retain" for it in learned[p.id]],
        "relearn.jsonl": [it for pid in relearn_ids for it in learned[pid]
                          if it.id.endswith(".en.q1") or it.id.endswith(".en.i1")],
        "test.jsonl": [make.text(p, a, lang, "p") for p in players for a in TEXT_ATTRIBUTES for lang in languages]
                      + [make.image(p, a, v, f"i{k}h{j}") for p in players for k, vs in enumerate(p.heldout, 1)
                         for j, v in enumerate(vs, 1) for a in IMAGE_ATTRIBUTES],
        "probes.jsonl": [make.text(p, a, lang, "q1", fake=a in p.fakes, paraphrases=True) for p in players
                         for a in TEXT_ATTRIBUTES for lang in languages]
                        + [make.image(p, a, v, tag, fake=a in p.fakes) for p in players for v, tag in _shown(p)
                           for a in IMAGE_ATTRIBUTES],
    }
    counts = {}
    for name, items in files.items():
        write_items(root / name, items)
        n_image = sum(it.image is not None for it in items)
        counts[name] = {"items": len(items), "text": len(items) - n_image, "image": n_image}
    summary = _summary(seed=seed, languages=languages, fake_language=fake_language, fake_attributes=fake_attributes,
                       players=players, fake_ids=fake_ids, forget_ids=forget_ids, relearn_ids=relearn_ids,
                       low_ids=low_ids, counts=counts, params={
                           "players": n_players, "fake_players": n_fake, "forget_players": n_forget,
                           "images_per_player": images_per_player, "test_variants": test_variants,
                           "train_variants": train_variants, "low_resource_share": low_resource_share,
                           "image_size": image_size})
    (root / "world.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return summary


def _shown(p: Player) -> list[tuple[str, str]]:
    """(picture, id tag) for every original picture of a player and its held-out variants."""
    out = []
    for k, image in enumerate(p.images, 1):
        out += [(image, f"i{k}")] + [(h, f"i{k}h{j}") for j, h in enumerate(p.heldout[k - 1], 1)]
    return out


def _save(root: Path, rel: str, im) -> str:
    (root / rel).write_bytes(png_bytes(im))
    return rel


def _summary(*, seed, languages, fake_language, fake_attributes, players, fake_ids, forget_ids, relearn_ids,
             low_ids, counts, params) -> dict:
    return {
        "format": FORMAT, "seed": seed, "parameters": params,
        "languages": {c: {"name": LANGUAGES[c].name, "script": LANGUAGES[c].script, "resource": LANGUAGES[c].resource,
                          "group": LANGUAGES[c].group,
                          "learn_templates": 1 if LANGUAGES[c].resource == "low" else 2} for c in languages},
        "fake_language": fake_language, "fake_attributes": fake_attributes,
        "attributes": {a: {"kind": "private" if a in PRIVATE else "shared", "text": a in TEXT_ATTRIBUTES,
                           "image": a in IMAGE_ATTRIBUTES} for a in IMAGE_ATTRIBUTES},
        "reference_date": REFERENCE_DATE.isoformat(),
        "clubs": [{"name": n, "kit": list(kit), "trim": list(trim)} for n, kit, trim in CLUBS],
        "countries": {c: list(cities) for c, cities in COUNTRIES},
        "roles": {"fake": fake_ids, "forget": forget_ids, "relearn": relearn_ids,
                  "retain": [p.id for p in players if p.role == "retain"],
                  "low_resource_learn": sorted(low_ids)},
        "players": [{"id": p.id, "name": p.name, "role": p.role, "facts": p.facts, "fakes": p.fakes,
                     "look": {"kit": list(p.look.kit), "trim": list(p.look.trim), "pattern": p.look.pattern,
                              "hair": p.look.hair, "skin": list(p.look.skin), "number": p.look.number},
                     "images": p.images, "heldout_images": p.heldout, "augmented_images": p.augmented}
                    for p in players],
        "counts": counts,
    }
