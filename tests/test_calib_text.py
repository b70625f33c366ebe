"""bench/calib_text.py: the MiniLM calibration text is deterministic, disjoint from the held-out
sentences, and the word salads reach the vocabulary the templates do not."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from calib_text import TEST_SENTENCES, sentences, vocab_sentences, vocab_words  # noqa: E402


def test_vocab_words_keeps_whole_ascii_words_sorted():
    vocab = {"[CLS]": 0, "##ing": 1, "zebra": 2, "a": 3, "apple": 4, "café": 5, "x2": 6, "Run": 7}
    assert vocab_words(vocab) == ["Run", "apple", "zebra"]


def test_vocab_sentences_deterministic_and_cover_the_words():
    words = [f"w{chr(97 + i)}{chr(97 + j)}" for i in range(26) for j in range(26)]
    words = [w[1:] for w in words]  # two-letter words
    a = vocab_sentences(words, 200, lo=3, hi=5)
    assert a == vocab_sentences(words, 200, lo=3, hi=5)
    assert a != vocab_sentences(words, 200, seed=2, lo=3, hi=5)
    lengths = {len(s.split()) for s in a}
    assert lengths == {3, 4, 5}
    assert all(s[0].isupper() and s[-1] in ".?!" for s in a)
    used = {w.strip(".?!").lower() for s in a for w in s.split()}
    assert used <= set(words) and len(used) > 0.5 * len(words)  # ~800 draws from 676 words


def test_templates_reach_few_words_and_miss_the_held_out_sentences():
    gen = sentences(300, exclude=tuple(TEST_SENTENCES))
    assert not set(gen) & set(TEST_SENTENCES)
    assert len({w.lower() for s in gen for w in s.split()}) < 500
