"""Generate repdrift's bundled demo datasets (run once; the output is committed).

Two small English tasks written for the project from seeded templates and vocabulary (nothing
is downloaded), shaped like their GLUE counterparts so the same task machinery reads them:

* ``demo_sst`` (preset ``demo-sst``): single-sentence movie-review sentiment, columns ``idx``,
  ``sentence``, ``label`` (1 positive, 0 negative). Besides plain statements the templates use
  negated opposites ("anything but dull"), contrast clauses where the second clause decides
  ("the plot is thin, but the acting is superb") and "fails to be <positive>" constructions,
  so a bag of sentiment words is not enough.
* ``demo_pair`` (preset ``demo-pair``): MRPC-style news-sentence pairs, columns ``idx``,
  ``sentence1``, ``sentence2``, ``label`` (1 paraphrase, 0 not). Positives restate the same
  facts with another template; most negatives keep high word overlap and change one fact (a
  number, a name, a direction, buyer and target swapped), a third pair unrelated events.

Each split is written as JSON lines to ``src/repdrift/data/<name>/{train,validation}.jsonl``.
Sentences are unique across both splits of a task, and the output depends only on ``SEED``::

    python scripts/make_demo_data.py          # rewrites the files; git diff shows no change
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

SEED = 20240611
N_TRAIN = 400
N_VALIDATION = 200
# share of demo_pair negatives that pair unrelated events (the rest change one fact); enough
# easy cases that a few dozen steps of fine-tuning learn something
EASY_NEGATIVES = 0.35
OUT = Path(__file__).resolve().parents[1] / "src" / "repdrift" / "data"

# --------------------------------------------------------------------------------------------
# demo_sst
# --------------------------------------------------------------------------------------------

SUBJECTS = [
    "the film", "this movie", "the plot", "the acting", "the screenplay", "the cinematography",
    "the soundtrack", "the lead performance", "the dialogue", "the pacing", "the ending",
    "the cast", "the director's latest", "this sequel", "the story", "the visual design",
    "the script", "the editing", "the final act", "the supporting cast", "the score",
    "the camera work", "the opening scene", "this thriller", "this comedy", "the documentary",
]  # fmt: skip
POSITIVE = [
    "brilliant", "moving", "gripping", "charming", "delightful", "heartfelt", "stunning",
    "witty", "captivating", "superb", "memorable", "thoughtful", "inventive", "touching",
    "engaging", "beautifully crafted", "sharp", "luminous", "exhilarating", "tender",
    "funny", "assured", "absorbing", "wonderful",
]  # fmt: skip
NEGATIVE = [
    "dull", "tedious", "clumsy", "lifeless", "predictable", "bland", "shallow", "forgettable",
    "tiresome", "incoherent", "flat", "pretentious", "sluggish", "mediocre", "overlong",
    "hollow", "messy", "grating", "contrived", "uninspired", "joyless", "lazy", "muddled",
    "awkward",
]  # fmt: skip
INTENSIFIERS = [
    "", "", "", "truly", "remarkably", "utterly", "surprisingly", "consistently", "genuinely",
    "rather", "often", "almost always",
]  # fmt: skip
NOUNS = ["film", "movie", "experience", "ride", "piece of work", "debut", "drama", "picture"]
VERDICTS_POS = ["Go see it", "Do not miss it", "Highly recommended", "A must-see"]
VERDICTS_NEG = ["Skip it", "Save your money", "Not recommended", "Wait for something better"]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _adj(words: list[str], rng: random.Random) -> str:
    intensity = rng.choice(INTENSIFIERS)
    return f"{intensity} {rng.choice(words)}".strip()


def _sst_sentence(label: int, rng: random.Random) -> str:
    """One review sentence whose sentiment is ``label``; the template is drawn from ``rng``."""
    same, other = (POSITIVE, NEGATIVE) if label == 1 else (NEGATIVE, POSITIVE)
    verdicts = VERDICTS_POS if label == 1 else VERDICTS_NEG
    s1, s2 = rng.sample(SUBJECTS, 2)
    templates: list[Callable[[], str]] = [
        # plain statements
        lambda: f"{_cap(s1)} is {_adj(same, rng)}.",
        lambda: f"{_cap(s1)} feels {_adj(same, rng)} from start to finish.",
        lambda: f"What a {rng.choice(same)} {rng.choice(NOUNS)}!",
        lambda: f"I found {s1} {_adj(same, rng)}.",
        lambda: f"It is hard to imagine a more {rng.choice(same)} {rng.choice(NOUNS)}.",
        lambda: f"{verdicts[rng.randrange(len(verdicts))]}: {s1} is {_adj(same, rng)}.",
        # negated opposites: the sentiment word disagrees with the label
        lambda: f"{_cap(s1)} is anything but {rng.choice(other)}.",
        lambda: f"{_cap(s1)} is never {rng.choice(other)}.",
        lambda: f"Nobody could call {s1} {rng.choice(other)}.",
        lambda: (
            f"{_cap(s1)} never manages to be {rng.choice(other)}."
            if label == 0
            else f"{_cap(s1)} never stops being {rng.choice(same)}."
        ),
        lambda: (
            f"{_cap(s1)} fails to be {rng.choice(other)}."
            if label == 0
            else f"{_cap(s1)} never fails to be {rng.choice(same)}."
        ),
        # contrast: the clause after "but" / the main clause after "although" decides
        lambda: f"{_cap(s1)} is {rng.choice(other)}, but {s2} is {_adj(same, rng)}.",
        lambda: f"Although {s1} is {rng.choice(other)}, {s2} is {_adj(same, rng)}.",
        lambda: (
            f"{_cap(s1)} starts out {rng.choice(other)}, yet the {rng.choice(NOUNS)} "
            f"ends up {rng.choice(same)}."
        ),
        lambda: f"Despite {rng.choice(other)} moments, {s1} is {_adj(same, rng)} overall.",
    ]
    return templates[rng.randrange(len(templates))]()


def make_sst(rng: random.Random) -> dict[str, list[dict]]:
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    for split, n in (("train", N_TRAIN), ("validation", N_VALIDATION)):
        rows: list[dict] = []
        while len(rows) < n:
            label = rng.randrange(2)
            sentence = _sst_sentence(label, rng)
            if sentence in seen:
                continue
            seen.add(sentence)
            rows.append({"idx": len(rows), "sentence": sentence, "label": label})
        splits[split] = rows
    return splits


# --------------------------------------------------------------------------------------------
# demo_pair
# --------------------------------------------------------------------------------------------

COMPANIES = [
    "Northwind Traders", "Acme Corp", "Globex", "Initech", "Vandelay Industries",
    "Stark Logistics", "Umbrella Health", "Hooli", "Soylent Foods", "Wayne Shipping",
    "Cyberdyne Systems", "Oscorp", "Massive Dynamic", "Tyrell Energy", "Wonka Brands",
]  # fmt: skip
PEOPLE = [
    "Maria Lopez", "James Chen", "Aisha Khan", "Peter Novak", "Laura Schmidt", "David Okafor",
    "Sofia Rossi", "Kenji Tanaka", "Emma Dubois", "Lucas Silva", "Hannah Berg", "Omar Haddad",
]  # fmt: skip
ROLES = ["chief executive", "finance chief", "chairman", "head of research", "general counsel"]
PLACES = [
    "Chicago", "Berlin", "Lisbon", "Toronto", "Osaka", "Nairobi", "Melbourne", "Denver",
    "Lyon", "Seoul", "Dublin", "Austin",
]  # fmt: skip
DAYS = ["on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday"]
PRODUCTS = ["electric car", "smartphone", "bicycle", "coffee", "solar panel", "laptop"]

# Each frame: slot samplers and several ways to say the same thing. "dir" is +1 (up) / -1.
UP = {1: ("rose", "increase", "climbed", "up", "rise"), -1: ("fell", "decrease", "dropped", "down", "drop")}  # fmt: skip


def _a(number: int) -> str:
    """The article before a spelled number: "an 8-year", "an 18-year", "a 12-year"."""
    return "an" if str(number).startswith("8") or number in (11, 18) else "a"


def _profit(f: dict) -> list[str]:
    rose, increase, climbed, _, _ = UP[f["dir"]]
    return [
        f"{f['c1']} said {f['day']} that its quarterly profit {rose} {f['n']} percent.",
        f"{f['c1']} reported {_a(f['n'])} {f['n']} percent {increase} in quarterly profit {f['day']}.",
        f"Quarterly profit at {f['c1']} {climbed} {f['n']} percent, the company said {f['day']}.",
    ]


def _appoint(f: dict) -> list[str]:
    return [
        f"{f['c1']} named {f['p1']} as its new {f['role']} {f['day']}.",
        f"{f['p1']} was appointed {f['role']} of {f['c1']} {f['day']}.",
        f"{f['c1']} announced {f['day']} that {f['p1']} would become its {f['role']}.",
    ]


def _sales(f: dict) -> list[str]:
    _, _, _, up, rise = UP[f["dir"]]
    grew = "grew" if f["dir"] == 1 else "shrank"
    return [
        f"Sales of {f['product']}s in {f['place']} {grew} {f['n']} percent last year.",
        f"Last year, {f['product']} sales in {f['place']} were {up} {f['n']} percent.",
        f"{f['place']} saw {_a(f['n'])} {f['n']} percent {rise} in {f['product']} sales last year.",
    ]


def _sentence_court(f: dict) -> list[str]:
    return [
        f"A court in {f['place']} sentenced {f['p1']} to {f['k']} years in prison {f['day']}.",
        f"{f['p1']} was sentenced {f['day']} to {f['k']} years in prison by a {f['place']} court.",
        f"{f['p1']} received {_a(f['k'])} {f['k']}-year prison sentence from a court in "
        f"{f['place']} {f['day']}.",
    ]


def _schools(f: dict) -> list[str]:
    return [
        f"Heavy snow forced the closure of {f['n']} schools in {f['place']} {f['day']}.",
        f"{f['n']} schools in {f['place']} were closed {f['day']} because of heavy snow.",
        f"Officials in {f['place']} shut {f['n']} schools {f['day']} after heavy snowfall.",
    ]


def _deal(f: dict) -> list[str]:
    return [
        f"{f['c1']} agreed to buy {f['c2']} for ${f['n']} million.",
        f"{f['c2']} will be acquired by {f['c1']} in {_a(f['n'])} ${f['n']} million deal.",
        f"{f['c1']} has agreed to acquire {f['c2']} for about ${f['n']} million.",
    ]


FRAMES: dict[str, tuple[Callable[[dict], list[str]], tuple[str, ...]]] = {
    # frame: (realizations, slots a negative may change)
    "profit": (_profit, ("c1", "n", "dir", "day")),
    "appoint": (_appoint, ("c1", "p1", "role")),
    "sales": (_sales, ("place", "product", "n", "dir")),
    "court": (_sentence_court, ("place", "p1", "k")),
    "schools": (_schools, ("place", "n", "day")),
    "deal": (_deal, ("n", "swap", "c2")),
}


def _slots(rng: random.Random) -> dict:
    c1, c2 = rng.sample(COMPANIES, 2)
    return {
        "c1": c1,
        "c2": c2,
        "p1": rng.choice(PEOPLE),
        "role": rng.choice(ROLES),
        "place": rng.choice(PLACES),
        "day": rng.choice(DAYS),
        "product": rng.choice(PRODUCTS),
        "n": rng.choice([3, 4, 5, 6, 7, 8, 9, 11, 12, 14, 15, 18, 20, 25, 30, 40, 45, 60]),
        "k": rng.choice([2, 3, 4, 5, 6, 8, 10, 12, 15, 20]),
        "dir": rng.choice([1, -1]),
    }


def _alter(slots: dict, which: str, rng: random.Random) -> dict:
    """The same slots with one fact changed."""
    new = dict(slots)
    if which == "swap":
        new["c1"], new["c2"] = slots["c2"], slots["c1"]
    elif which == "dir":
        new["dir"] = -slots["dir"]
    else:
        fresh = _slots(rng)
        while fresh[which] == slots[which] or (which == "c2" and fresh["c2"] == slots["c1"]):
            fresh = _slots(rng)
        new[which] = fresh[which]
    return new


def _pair(label: int, rng: random.Random) -> tuple[str, str]:
    frame = rng.choice(sorted(FRAMES))
    realize, changeable = FRAMES[frame]
    slots = _slots(rng)
    first = rng.choice(realize(slots))
    if label == 1:
        options = [s for s in realize(slots) if s != first]
        return first, rng.choice(options)
    if rng.random() < EASY_NEGATIVES:  # an unrelated event
        other = rng.choice([f for f in sorted(FRAMES) if f != frame])
        return first, rng.choice(FRAMES[other][0](_slots(rng)))
    altered = _alter(slots, rng.choice(changeable), rng)
    return first, rng.choice(realize(altered))


def make_pair(rng: random.Random) -> dict[str, list[dict]]:
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list[dict]] = {}
    for split, n in (("train", N_TRAIN), ("validation", N_VALIDATION)):
        rows: list[dict] = []
        while len(rows) < n:
            label = rng.randrange(2)
            s1, s2 = _pair(label, rng)
            if (s1, s2) in seen or s1 == s2:
                continue
            seen.add((s1, s2))
            rows.append({"idx": len(rows), "sentence1": s1, "sentence2": s2, "label": label})
        splits[split] = rows
    return splits


# --------------------------------------------------------------------------------------------


def write(name: str, splits: dict[str, list[dict]]) -> None:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        lines = [json.dumps(row, ensure_ascii=False, sort_keys=True) for row in rows]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    write("demo_sst", make_sst(random.Random(SEED)))
    write("demo_pair", make_pair(random.Random(SEED + 1)))


if __name__ == "__main__":
    main()
