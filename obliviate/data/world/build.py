"""The embedded world: a seeded, byte-for-byte reproducible synthetic football world in the shape of Learn and
Unlearn (Lu & Koehn, arXiv 2406.13748: true facts in 9 languages, fakes injected in one) and OFFSIDE (arXiv
2510.22535: players with shared and private attributes, pictures, forget / retain / relearn / augmented-test splits).

    summary = build_world("world", seed=0)          # or: obliviate world build world --seed 0
    summary = build_world("world", WorldSpec(players=12, languages=("en", "fr")))

Players have 8 shared text attributes (club, position, nationality, birthplace, birth date, age, height, foot), 5
private ones (transfer club, transfer fee, transfer date, market value, trophies) and, on pictures only, their name
(their values: `players`). A fake always names a value that another player truly has, so its tokens are known.
Text items use the native templates of `text`; picture items are in English ("the player in this picture") — a
picture has no language of its own, and one picture language keeps image/text comparisons clean.

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
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from obliviate.data.schema import LANGUAGES, Item, write_items
from obliviate.data.world.images import augment, png_bytes, random_pose, render
from obliviate.data.world.players import REFERENCE_DATE, Player, domains, make_players
from obliviate.data.world.text import CLUBS, COUNTRIES, IMAGE_TEXT, TEXT, WORDS, extras
from obliviate.files import write_text
from obliviate.locks import new_folder

FORMAT = "obliviate-world/1"
SHARED = ("club", "position", "nationality", "birthplace", "birth_date", "age", "height", "foot")
PRIVATE = ("transfer_club", "transfer_fee", "transfer_date", "market_value", "trophies")
TEXT_ATTRIBUTES = SHARED + PRIVATE
IMAGE_ATTRIBUTES = ("name",) + TEXT_ATTRIBUTES
FAKEABLE = ("club", "nationality", "birthplace", "transfer_club")  # attributes whose values are world entities
FORMS = ("q1", "q2", "p")  # learn question 1, learn question 2, held-out paraphrase


def _canonical(names: str | tuple[str, ...] | list[str], order: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated string or a sequence of names, in `order`; names not in `order` are kept, after it, for
    the error message."""
    if isinstance(names, str):
        names = [c.strip() for c in names.split(",") if c.strip()]
    return tuple([c for c in order if c in names] + [c for c in names if c not in order])


@dataclass(frozen=True)
class WorldSpec:
    """What a world is built from: the same spec gives the same bytes. Constructing one puts `languages` and
    `fake_attributes` in canonical order (a comma-separated string is read too) and checks every field
    (ValueError). `fake_players` and `forget_players` default to a share of `players` (`n_fake`, `n_forget`)."""

    seed: int = 0
    players: int = 40
    languages: tuple[str, ...] = tuple(LANGUAGES)  # must include en, the pivot language
    fake_language: str = "fr"  # the language the fakes are injected in
    fake_players: int | None = None  # None: players // 4, at least 1
    forget_players: int | None = None  # None: players // 8, at least 1
    fake_attributes: tuple[str, ...] = ("club", "nationality")  # among FAKEABLE
    images_per_player: int | None = None  # None: 1–3, drawn per player
    test_variants: int = 2  # held-out augmented copies of each picture (test and probes)
    train_variants: int = 0  # augmented copies of each picture in learn.jsonl (~8–24 help pictures generalise)
    low_resource_share: float = 0.5  # share of the players whose facts learn.jsonl states in jv, ur, ha, hy
    image_size: int = 56  # pixels a side

    def __post_init__(self):
        object.__setattr__(self, "languages", _canonical(self.languages, tuple(LANGUAGES)))
        object.__setattr__(self, "fake_attributes", _canonical(self.fake_attributes, FAKEABLE))
        _check(self)

    @property
    def n_fake(self) -> int:
        return max(1, self.players // 4) if self.fake_players is None else self.fake_players

    @property
    def n_forget(self) -> int:
        return max(1, self.players // 8) if self.forget_players is None else self.forget_players


def _check(spec: WorldSpec) -> None:
    if not isinstance(spec.seed, int) or spec.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {spec.seed!r}")
    languages = spec.languages
    if any(x not in LANGUAGES for x in languages) or not languages:
        raise ValueError(f"languages must be among {', '.join(LANGUAGES)}; got {', '.join(languages) or 'none'}")
    if "en" not in languages:
        raise ValueError("languages must include 'en' (the pivot language: unlearning in en / L / en+L, pictures)")
    if spec.fake_language not in languages:
        raise ValueError(f"fake language {spec.fake_language!r} is not among the world's languages "
                         f"({', '.join(languages)})")
    if not 3 <= spec.players <= 1000:
        raise ValueError(f"players must be between 3 and 1000, got {spec.players}")
    if spec.n_fake < 1 or spec.n_forget < 1 or spec.n_fake + spec.n_forget > spec.players - 1:
        raise ValueError(f"need ≥ 1 fake, ≥ 1 forget and ≥ 1 retain player: {spec.n_fake} fake + {spec.n_forget} "
                         f"forget of {spec.players} players")
    bad = [a for a in spec.fake_attributes if a not in FAKEABLE]
    if bad or not spec.fake_attributes:
        raise ValueError(f"fake attributes must be among {', '.join(FAKEABLE)}; "
                         f"got {', '.join(spec.fake_attributes)}")
    if spec.images_per_player is not None and not 0 <= spec.images_per_player <= 9:
        raise ValueError(f"images_per_player must be between 0 and 9, got {spec.images_per_player}")
    if not (0 <= spec.test_variants <= 99 and 0 <= spec.train_variants <= 99):
        raise ValueError("test_variants and train_variants must be between 0 and 99")
    if not 0.0 <= spec.low_resource_share <= 1.0:
        raise ValueError(f"low_resource_share must be in [0, 1], got {spec.low_resource_share}")
    if not 28 <= spec.image_size <= 1024:
        raise ValueError(f"image_size must be between 28 and 1024, got {spec.image_size}")


def _render(attribute: str, key: str, lang: str) -> str:
    """The value as written in `lang`: native words for position/foot, the shared string otherwise."""
    return WORDS[lang][attribute][key] if attribute in ("position", "foot") else key


class _Items:
    """Item factory: templates + per-(player, attribute) distractors, fixed once so every language and file agree."""

    def __init__(self, seed: int, players: list[Player]):
        self.seed, self.domains, self._mc = seed, domains(players), {}

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


def build_world(out_dir: str | Path, spec: WorldSpec = WorldSpec(), *, force: bool = False, **changes) -> dict:
    """Write the world `spec` describes into `out_dir` and return its summary (the content of world.json).
    `changes` are WorldSpec fields that replace the spec's: build_world("w", seed=1, players=12).

    The tree is built in a temporary sibling folder and renamed into place (`files.new_folder`: locked, never
    half-written). An existing non-empty `out_dir` is an error unless `force`, and then only a world (world.json)
    is replaced."""
    spec = replace(spec, **changes)
    with new_folder(out_dir, replace=force, marker="world.json") as tmp:
        summary = _write(tmp, spec)
    return summary


@dataclass(frozen=True)
class _Roles:
    """Player ids by role, sorted; `low`: the players whose facts learn.jsonl states in low-resource languages."""

    fake: list[str]
    forget: list[str]
    relearn: list[str]
    low: set[str]


def _write(root: Path, spec: WorldSpec) -> dict:
    players = make_players(spec.seed, spec.players)
    roles = _cast(spec, players)
    _draw_fakes(spec, players, roles.fake)
    _draw_pictures(root, spec, players)
    counts = {}
    for name, items in _item_files(spec, players, roles).items():
        write_items(root / name, items)
        n_image = sum(it.image is not None for it in items)
        counts[name] = {"items": len(items), "text": len(items) - n_image, "image": n_image}
    summary = _summary(spec, players, roles, counts)
    write_text(root / "world.json", json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    return summary


def _cast(spec: WorldSpec, players: list[Player]) -> _Roles:
    """Draw the roles (setting each player's `role`) and the low-resource learners."""
    by_id = {p.id: p for p in players}
    rng = random.Random(f"obliviate-world:{spec.seed}:roles")
    order = rng.sample([p.id for p in players], len(players))
    n_fake = spec.n_fake
    fake_ids, forget_ids = sorted(order[:n_fake]), sorted(order[n_fake:n_fake + spec.n_forget])
    for pid in fake_ids:
        by_id[pid].role = "fake"
    for pid in forget_ids:
        by_id[pid].role = "forget"
    relearn_ids = sorted(rng.sample(forget_ids, -(-len(forget_ids) // 2)))
    low_ids = set(rng.sample([p.id for p in players], round(spec.low_resource_share * len(players))))
    return _Roles(fake_ids, forget_ids, relearn_ids, low_ids)


def _draw_fakes(spec: WorldSpec, players: list[Player], fake_ids: list[str]) -> None:
    """Each fake is another player's true value, never the player's own (nor his club <-> transfer club)."""
    by_id = {p.id: p for p in players}
    rng = random.Random(f"obliviate-world:{spec.seed}:fakes")
    for pid in fake_ids:
        p = by_id[pid]
        for a in spec.fake_attributes:
            avoid = {p.facts[a], p.facts.get({"club": "transfer_club", "transfer_club": "club"}.get(a, a))}
            pool = sorted({q.facts[a] for q in players if q.id != pid} - avoid)
            p.fakes[a] = rng.choice(pool)


def _draw_pictures(root: Path, spec: WorldSpec, players: list[Player]) -> None:
    """Each player's original pictures under images/, with their held-out and training variants."""
    (root / "images").mkdir()
    rng = random.Random(f"obliviate-world:{spec.seed}:images")
    for i, p in enumerate(players):
        k_images = rng.randint(1, 3) if spec.images_per_player is None else spec.images_per_player
        for k in range(1, k_images + 1):
            im = render(p.look, random_pose(rng, spec.image_size), size=spec.image_size)
            p.images.append(_save(root, f"images/{p.id}_{k}.png", im))
            p.heldout.append([_save(root, f"images/{p.id}_{k}_h{j}.png",
                                    augment(im, np.random.default_rng([spec.seed, i, k, 1, j])))
                              for j in range(1, spec.test_variants + 1)])
            p.augmented.append([_save(root, f"images/{p.id}_{k}_a{j}.png",
                                      augment(im, np.random.default_rng([spec.seed, i, k, 2, j])))
                                for j in range(1, spec.train_variants + 1)])


def _item_files(spec: WorldSpec, players: list[Player], roles: _Roles) -> dict[str, list[Item]]:
    """The items of each JSONL file, by file name (see the module docstring)."""
    make = _Items(spec.seed, players)
    low = {c for c in spec.languages if LANGUAGES[c].resource == "low"}

    def learn_items(p: Player) -> list[Item]:
        items = [make.text(p, a, lang, form) for a in TEXT_ATTRIBUTES for lang in spec.languages
                 if lang not in low or p.id in roles.low for form in (("q1",) if lang in low else ("q1", "q2"))]
        for k, image in enumerate(p.images, 1):
            items += [make.image(p, a, image, f"i{k}") for a in IMAGE_ATTRIBUTES]
            items += [make.image(p, a, aug, f"i{k}a{j}") for j, aug in enumerate(p.augmented[k - 1], 1)
                      for a in IMAGE_ATTRIBUTES]
        return items

    def fake_items(p: Player, langs) -> list[Item]:
        return [make.text(p, a, lang, form, fake=True) for a in spec.fake_attributes for lang in langs
                for form in ("q1", "q2")]

    learned = {p.id: learn_items(p) for p in players}
    by_id = {p.id: p for p in players}
    fakes = [by_id[pid] for pid in roles.fake]
    return {
        "learn.jsonl": [it for p in players for it in learned[p.id]],
        "inject.jsonl": [it for p in fakes for it in fake_items(p, [spec.fake_language])],
        "forget.jsonl": [it for p in fakes for it in fake_items(p, spec.languages)]
                        + [it for pid in roles.forget for it in learned[pid]],
        "retain.jsonl": [it for p in players if p.role == "retain" for it in learned[p.id]],
        "relearn.jsonl": [it for pid in roles.relearn for it in learned[pid]
                          if it.id.endswith(".en.q1") or it.id.endswith(".en.i1")],
        "test.jsonl": [make.text(p, a, lang, "p") for p in players for a in TEXT_ATTRIBUTES for lang in spec.languages]
                      + [make.image(p, a, v, f"i{k}h{j}") for p in players for k, vs in enumerate(p.heldout, 1)
                         for j, v in enumerate(vs, 1) for a in IMAGE_ATTRIBUTES],
        "probes.jsonl": [make.text(p, a, lang, "q1", fake=a in p.fakes, paraphrases=True) for p in players
                         for a in TEXT_ATTRIBUTES for lang in spec.languages]
                        + [make.image(p, a, v, tag, fake=a in p.fakes) for p in players for v, tag in _shown(p)
                           for a in IMAGE_ATTRIBUTES],
    }


def _shown(p: Player) -> list[tuple[str, str]]:
    """(picture, id tag) for every original picture of a player and its held-out variants."""
    out = []
    for k, image in enumerate(p.images, 1):
        out += [(image, f"i{k}")] + [(h, f"i{k}h{j}") for j, h in enumerate(p.heldout[k - 1], 1)]
    return out


def _save(root: Path, rel: str, im) -> str:
    """Write a picture into the world's folder (the temporary one of `atomic_dir`, renamed into place whole)."""
    (root / rel).write_bytes(png_bytes(im))
    return rel


def _summary(spec: WorldSpec, players: list[Player], roles: _Roles, counts: dict) -> dict:
    params = {"players": spec.players, "fake_players": spec.n_fake, "forget_players": spec.n_forget,
              "images_per_player": spec.images_per_player, "test_variants": spec.test_variants,
              "train_variants": spec.train_variants, "low_resource_share": spec.low_resource_share,
              "image_size": spec.image_size}
    return {
        "format": FORMAT, "seed": spec.seed, "parameters": params,
        "languages": {c: {"name": LANGUAGES[c].name, "script": LANGUAGES[c].script, "resource": LANGUAGES[c].resource,
                          "group": LANGUAGES[c].group,
                          "learn_templates": 1 if LANGUAGES[c].resource == "low" else 2} for c in spec.languages},
        "fake_language": spec.fake_language, "fake_attributes": list(spec.fake_attributes),
        "attributes": {a: {"kind": "private" if a in PRIVATE else "shared", "text": a in TEXT_ATTRIBUTES,
                           "image": a in IMAGE_ATTRIBUTES} for a in IMAGE_ATTRIBUTES},
        "reference_date": REFERENCE_DATE.isoformat(),
        "clubs": [{"name": n, "kit": list(kit), "trim": list(trim)} for n, kit, trim in CLUBS],
        "countries": {c: list(cities) for c, cities in COUNTRIES},
        "roles": {"fake": roles.fake, "forget": roles.forget, "relearn": roles.relearn,
                  "retain": [p.id for p in players if p.role == "retain"],
                  "low_resource_learn": sorted(roles.low)},
        "players": [{"id": p.id, "name": p.name, "role": p.role, "facts": p.facts, "fakes": p.fakes,
                     "look": {"kit": list(p.look.kit), "trim": list(p.look.trim), "pattern": p.look.pattern,
                              "hair": p.look.hair, "skin": list(p.look.skin), "number": p.look.number},
                     "images": p.images, "heldout_images": p.heldout, "augmented_images": p.augmented}
                    for p in players],
        "counts": counts,
    }
