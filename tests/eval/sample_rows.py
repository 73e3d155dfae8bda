"""Hand-made result rows for the view and report tests: every field None (or a placeholder) unless given."""
from obliviate.eval.rows import ProbeRow

BLANK = dict(model="m", split="forget", id="x", entity="p0", attribute="club", kind="shared", language="en",
             modality="text", question="q?", answer="a.", value=None, truth=None, generation="", correct=None,
             exact=None, says_fake=None, says_truth=None, rouge1=None, rouge2=None, rougeL=None, bleu=None)


def make_row(**fields) -> ProbeRow:
    return ProbeRow(**{**BLANK, **fields})
