"""Error feedback around any update codec: EF (residual accumulation) and EF21.

- EF: send C(x + e), keep e <- x + e - D(C(x + e)). Needs a contractive codec: an unbiased,
  high-variance codec (QSGD, TernGrad, unbiased random-k or rotation) makes EF diverge (measured:
  EF around 2-bit QSGD fell to 3 % accuracy on digits), so such a codec is refused with a
  SpecError; use its biased variant.
- EF21: client keeps g (what the server already holds of it); sends C(x - g), g <- g + D(...).
  The server's estimate of the client's update is its own copy of g.

The state is per client: :class:`ClientState` (float32 arrays, the same size as the model, and
the client id it belongs to: using it for another client is an error).

Both directions are bit-exact: what the server decodes is what the client subtracts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..format.errors import SpecError
from .codecs import Codec, Update, layout_of

KINDS = ("ef", "ef21")


@dataclass
class ClientState:
    """What a client keeps between rounds: its id and the EF residual or EF21 estimate."""

    client: str
    memory: dict[str, np.ndarray] = field(default_factory=dict)

    def nbytes(self) -> int:
        """Bytes of state kept (float32 memory)."""
        return int(sum(a.nbytes for a in self.memory.values()))


@dataclass(frozen=True)
class ErrorFeedback:
    """``codec`` wrapped with error feedback of ``kind`` ("ef" or "ef21")."""

    codec: Codec
    kind: str = "ef"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"error feedback kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.codec.contractive:
            raise SpecError(
                f"codec {self.codec.name!r} is unbiased and not contractive: error feedback around it "
                "diverges; use a contractive (biased) codec, e.g. its biased variant"
            )

    @property
    def name(self) -> str:
        return f"{self.codec.name}+{self.kind}"

    def new_state(self, client: str) -> ClientState:
        return ClientState(str(client))

    def step(self, update: Mapping[str, np.ndarray], state: ClientState, client: str,
             seed: int = 0, base: int | None = None) -> tuple[bytes, Update]:
        """Encode one round's update of ``client``; returns (stream bytes, what the server will
        decode) and advances ``state`` in place."""
        if state.client != str(client):
            raise SpecError(f"client state belongs to client {state.client!r}, not {client!r}")
        upd = {n: np.asarray(update[n], np.float32) for n in sorted(update)}
        mem = state.memory
        if mem and set(mem) != set(upd):
            raise SpecError("client state was kept for a different model (tensor names differ)")
        if not mem:
            mem.update({n: np.zeros_like(a) for n, a in upd.items()})
        if self.kind == "ef":
            target = {n: upd[n] + mem[n] for n in upd}
        else:
            target = {n: upd[n] - mem[n] for n in upd}
        data = self.codec.encode(target, seed, base)
        sent = self.codec.decode(data, layout_of(target), base)
        if self.kind == "ef":
            for n in upd:
                mem[n] = target[n] - sent[n]
            return data, sent
        for n in upd:
            mem[n] = mem[n] + sent[n]
        return data, {n: mem[n].copy() for n in upd}
