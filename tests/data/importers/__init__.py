from pathlib import Path

FIX = Path(__file__).resolve().parents[2] / "fixtures"  # hand-written sources: offside/, tofu/, news/


def by_id(items):
    return {item.id: item for item in items}
