"""The data layer: question-answer items and their JSONL files (`schema`), the embedded synthetic world (`world`),
importers of public unlearning datasets (`importers`) and "I don't know" answers (`idk`). It imports nothing of
obliviate but `files`, and no torch."""
from obliviate.data.schema import KNOWN_LANGUAGES, LANGUAGES, DataError, Item, load_items, write_items

__all__ = ["KNOWN_LANGUAGES", "LANGUAGES", "DataError", "Item", "load_items", "write_items"]
