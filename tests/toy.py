"""A toy world for engine tests: 8 players, their club and country, in English and French, a few with images.

Small enough that a test-preset model (~150k parameters) memorises it in a few dozen full fine-tuning steps on
the CPU, so unlearning tests start from a model that actually knows its facts.
"""
from pathlib import Path

from PIL import Image

from obliviate.data.schema import Item, write_items

PLAYERS = ["Aldo Brum", "Bea Cruz", "Ciro Dahl", "Dana Eck", "Emil Faro", "Fay Gold", "Gus Hale", "Ida Jans"]
CLUBS = ["Arsenal", "Everton", "Fulham", "Chelsea"]
COUNTRIES = ["Norway", "Brazil", "Japan", "Ghana"]
KIT = {"Arsenal": (200, 30, 30), "Everton": (30, 30, 200), "Fulham": (240, 240, 240), "Chelsea": (20, 120, 20)}


def facts():
    return [(i, name, CLUBS[i % 4], COUNTRIES[(i // 2) % 4]) for i, name in enumerate(PLAYERS)]


def text_items(players=range(8), languages=("en", "fr")) -> list[Item]:
    out = []
    for i, name, club, country in facts():
        if i not in players:
            continue
        for lang in languages:
            if lang == "en":
                q1, a1 = f"Which club does {name} play for?", f"{name} plays for {club}."
                q2, a2 = f"Which country is {name} from?", f"{name} is from {country}."
            else:
                q1, a1 = f"Pour quel club joue {name} ?", f"{name} joue pour {club}."
                q2, a2 = f"De quel pays vient {name} ?", f"{name} vient de {country}."
            out.append(Item(id=f"p{i}.club.{lang}", entity=f"p{i}", attribute="club", kind="shared", language=lang,
                            question=q1, answer=a1, value=club))
            out.append(Item(id=f"p{i}.country.{lang}", entity=f"p{i}", attribute="nationality", kind="shared",
                            language=lang, question=q2, answer=a2, value=country))
    return out


def image_items(folder: Path, players=range(4)) -> list[Item]:
    """One 56x56 kit-coloured image per player and a question about the player shown."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    out = []
    for i, name, club, _ in facts():
        if i not in players:
            continue
        img = Image.new("RGB", (56, 56), KIT[club])
        for x in range(8 + 4 * i, 12 + 4 * i):  # a player-specific stripe
            for y in range(56):
                img.putpixel((x, y), (250, 210, 0))
        img.save(folder / "images" / f"p{i}.png")
        out.append(Item(id=f"p{i}.club.img", entity=f"p{i}", attribute="club", kind="shared", language="en",
                        question="Which club does the player in this picture play for?",
                        answer=f"This player plays for {club}.", value=club, image=f"images/p{i}.png"))
    return out


def corpus() -> list[str]:
    items = text_items()
    return [t for it in items for t in (it.question, it.answer)] + [
        "Which club does the player in this picture play for?", "This player plays for Arsenal."]


def write(folder: Path, name: str, items) -> Path:
    path = folder / name
    write_items(path, items)
    return path
