"""Calibration text for the MiniLM benchmarks: a deterministic generator of varied English
sentences (statements, questions, requests) from templates and word lists, so PTQ calibration
has thousands of tokens without downloading a corpus. Disjoint by construction from the
hand-written evaluation sentences of bench/mixed_precision.py (checked by the caller)."""

from __future__ import annotations

import random

# The hand-written MiniLM test sentences of bench/vs_nncodec.py and bench/task_models.py (its first 32).
TEST_SENTENCES = [
    "The cat sat on the mat.", "A dog is playing in the park.", "Stock markets fell sharply today.",
    "The central bank raised interest rates.", "I love eating fresh strawberries.",
    "Quantum computers use qubits.", "The football match ended in a draw.",
    "She is reading a novel by the window.", "Heavy rain is expected tomorrow.",
    "The recipe calls for two cups of flour.", "Neural networks learn from data.",
    "He repaired the bicycle's flat tyre.", "The museum opens at nine o'clock.",
    "Wireless networks share the radio spectrum.", "The train to Berlin is delayed.",
    "Photosynthesis converts light into chemical energy.", "My laptop battery drains quickly.",
    "The orchestra played Beethoven's ninth symphony.", "Volcanoes can erupt without warning.",
    "Please close the door behind you.", "The startup raised ten million dollars.",
    "Bees are essential for pollination.", "The hotel room had a view of the sea.",
    "Compression reduces the size of files.", "The child built a sandcastle.",
    "Elections will be held next spring.", "The chef sharpened his knives.",
    "Antibiotics do not work against viruses.", "The marathon runner crossed the finish line.",
    "Snow covered the mountain peaks.", "The software update fixed several bugs.",
    "A rainbow appeared after the storm.", "The library lends e-books online.",
    "Coffee prices have risen this year.", "The spacecraft landed on Mars.",
    "Learning a language takes practice.", "The river flooded the village.",
    "The teacher graded the exams.", "Electric cars are becoming cheaper.",
    "The puppy chewed my shoes.", "Jazz musicians often improvise.",
    "The bridge was closed for repairs.", "Vaccines train the immune system.",
    "The restaurant serves vegan dishes.", "Satellites orbit the Earth.",
    "The painter mixed blue and yellow.", "Our flight was cancelled.",
    "The garden is full of roses.", "Encryption protects private messages.",
    "The kids played chess after school.",
]

PEOPLE = [
    "my sister", "the new manager", "a young doctor", "our teacher", "the old fisherman", "a tourist",
    "the mayor", "my neighbour", "the pilot", "a group of students", "the chef", "the lawyer",
    "her cousin", "the engineers", "a local farmer", "the committee", "the nurse", "my boss",
    "the kids", "a famous author", "the police", "the volunteers", "an elderly couple", "the coach",
]
THINGS = [
    "the report", "a blue bicycle", "the kitchen window", "an old map", "the quarterly budget",
    "a wooden table", "the software update", "the train schedule", "a cup of coffee", "the contract",
    "the garden fence", "a broken laptop", "the museum tickets", "the weather forecast", "a red scarf",
    "the bank statement", "the wedding photos", "a bag of apples", "the parking permit", "the new policy",
    "the research data", "a pair of boots", "the heating system", "the concert hall", "a paper kite",
]
VERBS = [
    "repaired", "painted", "sold", "lost", "found", "delivered", "checked", "signed", "ordered",
    "cleaned", "reviewed", "borrowed", "described", "photographed", "moved", "replaced", "printed",
    "wrapped", "inspected", "returned", "discussed", "shared", "measured", "translated",
]
PLACES = [
    "in the village", "near the station", "at the office", "on the island", "in the hospital",
    "behind the church", "at the airport", "in the city centre", "on the farm", "at the harbour",
    "in the laboratory", "at the stadium", "in the library", "on the mountain", "at the market",
    "in the classroom", "at the factory", "in the park", "by the river", "at the border",
]
TIMES = [
    "yesterday", "last night", "on Monday", "this morning", "after lunch", "before the holidays",
    "in March", "every weekend", "two years ago", "during the storm", "at midnight", "last summer",
    "early on Friday", "over the winter", "after the meeting", "in the afternoon",
]
ADJS = [
    "expensive", "quiet", "crowded", "dangerous", "beautiful", "slow", "reliable", "confusing",
    "popular", "fragile", "modern", "noisy", "cheap", "delicious", "strange", "comfortable",
]
TOPICS = [
    "climate change", "the stock market", "electric vehicles", "public transport", "healthy eating",
    "online privacy", "space exploration", "renewable energy", "local elections", "the football league",
    "artificial intelligence", "housing prices", "ancient history", "mobile networks", "ocean pollution",
    "remote work", "the film festival", "vaccination rates", "water supply", "tax reform",
]
NUMS = ["two", "three", "five", "ten", "twelve", "fifty", "a hundred", "several", "a few", "many"]
UNITS = ["minutes", "hours", "days", "weeks", "kilometres", "euros", "dollars", "people", "pages", "boxes"]

TEMPLATES = [
    "{P} {V} {T} {L} {W}.",
    "{T_} was {A} , so {P} {V} it again.",
    "Why did {P} say that {T} was so {A}?",
    "Can you tell me where {P} {V} {T}?",
    "{W_}, {P} gave a talk about {O} {L}.",
    "The article on {O} was {A} but worth reading.",
    "It took {N} {U} before {P} {V} {T}.",
    "Please ask {P} whether {T} is still {A}.",
    "Experts warned that {O} could become {A} within {N} {U}.",
    "{P_} and {P2} argued about {O} {W}.",
    "I think {T} {L} is too {A} for {P}.",
    "According to {P}, about {N} {U} were needed to finish {T}.",
    "How much does {T} cost {L}?",
    "{P_} {V} {T} because it looked {A}.",
    "The debate about {O} continued {L} {W}.",
    "Nobody expected that {P} would be so {A} about {O}.",
    "Is it true that {P} {V} {T} {W}?",
    "After {N} {U}, {P} finally {V} {T}.",
]


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def sentences(n: int, seed: int = 0, exclude: tuple[str, ...] = ()) -> list[str]:
    """``n`` distinct generated sentences (deterministic in ``seed``), none in ``exclude``."""
    rng = random.Random(seed)
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n:
        t = rng.choice(TEMPLATES)
        p, p2 = rng.sample(PEOPLE, 2)
        thing, when = rng.choice(THINGS), rng.choice(TIMES)
        s = t.format(
            P=p, P_=_cap(p), P2=p2, V=rng.choice(VERBS), T=thing, T_=_cap(thing), L=rng.choice(PLACES),
            W=when, W_=_cap(when), A=rng.choice(ADJS), O=rng.choice(TOPICS), N=rng.choice(NUMS),
            U=rng.choice(UNITS),
        ).replace(" ,", ",")
        s = _cap(s)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def vocab_words(vocab) -> list[str]:
    """The whole-word entries of a WordPiece vocabulary (ASCII letters, 2+ characters; no ``##``
    pieces, no special tokens), sorted so the sentences below do not depend on dict order."""
    return sorted(w for w in vocab if w.isascii() and w.isalpha() and len(w) > 1)


def vocab_sentences(words: list[str], n: int, seed: int = 1, lo: int = 6, hi: int = 18) -> list[str]:
    """``n`` deterministic word salads of ``lo``..``hi`` words drawn uniformly from ``words``: no
    grammar, but the whole vocabulary, which the templates above (a few hundred words) do not
    reach. GPTQ on the templates alone fits them (MiniLM 4-bit g128: cosine 0.998 on the calibration
    sentences, 0.990 on the evaluation ones); adding these spreads the layer Hessians over the
    tokens real text uses."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))
        out.append(_cap(s) + rng.choice("." * 2 + "?!"))
    return out
