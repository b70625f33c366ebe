"""The ServerApp side of nnshare's Flower adapter: :class:`NNShareStrategy`, a Strategy wrapper
in the style of Flower's differential-privacy wrappers.

``NNShareStrategy(FedAvg(...), codec)`` sends the broadcast as one nnshare model stream and
names the codec in the train config; each reply's nnshare update stream is decoded against the
broadcast every client held (its fingerprint is in the stream: a reply coded against another
round's broadcast is refused) and handed to the inner strategy as the ordinary ArrayRecord
``broadcast + update``, so FedAvg, FedAdam, Krum, ... aggregate unchanged. A reply that fails to
decode (truncated, another round's, not an nnshare stream) is left out of the round and reported:
in the round's train metrics and in :attr:`NNShareStrategy.rejected`.

Metrics added to every round's aggregated train MetricRecord (exact bytes):
``nnshare-uplink-bytes`` (every reply stream received, refused ones included),
``nnshare-downlink-bytes`` (the broadcast stream times the messages sent),
``nnshare-fp32-uplink-bytes`` (what float32 arrays of the accepted replies would carry),
``nnshare-accepted`` and ``nnshare-rejected`` (replies). Evaluate rounds add their downlink.

With DP: wrap the DP wrapper (``NNShareStrategy(DifferentialPrivacyClientSideFixedClipping(...))``)
and put ``nnshare_mod`` before ``fixedclipping_mod`` on the client, so the clipped update is what
is coded. Coding (and error feedback) can raise the norm above the clipping norm; ``max_norm``
(default: the DP wrapper's clipping norm when the inner strategy is one) caps every decoded
update's L2 norm before aggregation, so each client's sensitivity stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from logging import INFO, WARNING

from ..format.errors import NNShareError, SpecError
from .codecs import Codec, fingerprint, layout_of
from .feedback import ErrorFeedback
from .flower_wire import (
    KEY_CODEC,
    KEY_ROUND,
    STYPE_MODEL,
    STYPE_UPDATE,
    array_record,
    cap_norm,
    decode_broadcast,
    describe,
    encode_broadcast,
    flwr,
    from_record,
    numpy_arrays,
    stream_record,
)


@dataclass(frozen=True)
class Rejected:
    """A reply left out of a round: round, the node it came from, the error type and why."""

    round: int
    node: int
    error: str
    reason: str


try:
    from flwr.serverapp.strategy import Strategy
    from flwr.supercore import log
except ImportError:  # pragma: no cover - make test installs the extra
    raise SpecError("the Flower adapter needs Flower: pip install 'nnshare[flower]'") from None


class NNShareStrategy(Strategy):
    """Wrap ``strategy``: nnshare streams on the wire both ways (see the module docstring).

    ``codec``: an update codec or :class:`~.feedback.ErrorFeedback` (EF only: EF21 needs the
    server's copy of each client's estimate in sync, which one lost reply breaks).
    ``max_norm``: cap on each decoded update's L2 norm (None: the DP wrapper's clipping
    norm if the inner strategy is a fixed-clipping DP wrapper, else no cap).
    """

    def __init__(self, strategy, codec: Codec | ErrorFeedback, *, max_norm: float | None = None) -> None:
        super().__init__()
        if isinstance(codec, ErrorFeedback) and codec.kind != "ef":
            raise SpecError(
                "the Flower wrapper supports error feedback 'ef' only: with 'ef21' one lost reply "
                "puts the server's copy of that client's estimate out of sync for good"
            )
        if not isinstance(codec, Codec | ErrorFeedback):
            raise SpecError(f"codec must be an nnshare update codec, got {type(codec).__name__}")
        if max_norm is None:
            max_norm = getattr(strategy, "clipping_norm", None)
        if max_norm is not None and not max_norm > 0:
            raise SpecError(f"max_norm must be positive, got {max_norm}")
        self.strategy = strategy
        self.codec = codec
        self.max_norm = None if max_norm is None else float(max_norm)
        self.rejected: list[Rejected] = []
        self.capped = 0
        self._held: dict = {}
        self._base = 0
        self._down = 0
        self._eval_down = 0

    def __repr__(self) -> str:
        return f"NNShareStrategy({self.strategy!r}, {describe(self.codec)})"

    def summary(self) -> None:
        log(INFO, "\t├──> nnshare codec: %s (max norm %s)", describe(self.codec), self.max_norm)
        self.strategy.summary()

    def _encode(self, messages, server_round: int, train: bool):
        messages = list(messages)
        down = 0
        for m in messages:
            recs = list(m.content.array_records.items())
            if len(recs) != 1:
                raise SpecError(f"NNShareStrategy expects one ArrayRecord per message, found {len(recs)}")
            key, rec = recs[0]
            if list(rec.keys()) == ["nnshare"]:  # the same RecordDict shared by several messages
                data = from_record(rec, STYPE_MODEL, "the broadcast")
            else:
                arrays = numpy_arrays(rec)
                data = encode_broadcast(arrays)
                if train:  # what every client holds: the decoded broadcast
                    self._held = decode_broadcast(data)
                    self._base = fingerprint(self._held)
                m.content[key] = stream_record(data, STYPE_MODEL)
            if train:
                cfg = list(m.content.config_records.values())
                if len(cfg) != 1:
                    raise SpecError(f"NNShareStrategy expects one ConfigRecord, found {len(cfg)}")
                cfg[0][KEY_CODEC] = describe(self.codec)
                cfg[0][KEY_ROUND] = int(server_round)
            down += len(data)
        return messages, down

    def configure_train(self, server_round, arrays, config, grid):
        msgs = self.strategy.configure_train(server_round, arrays, config, grid)
        msgs, self._down = self._encode(msgs, server_round, train=True)
        return msgs

    def configure_evaluate(self, server_round, arrays, config, grid):
        msgs = self.strategy.configure_evaluate(server_round, arrays, config, grid)
        msgs, self._eval_down = self._encode(msgs, server_round, train=False)
        return msgs

    def decode_reply(self, reply) -> dict:
        """The model ``broadcast + update`` a train reply carries (name -> float32 array, in
        broadcast order); FormatError / SpecError on a bad reply."""
        inner = self.codec.codec if isinstance(self.codec, ErrorFeedback) else self.codec
        recs = list(reply.content.array_records.values())
        if len(recs) != 1:
            raise SpecError(f"a reply must hold exactly one ArrayRecord, found {len(recs)}")
        data = from_record(recs[0], STYPE_UPDATE, "the reply")
        update = inner.decode(data, layout_of(self._held), self._base)
        update, capped = cap_norm(update, self.max_norm)
        self.capped += int(capped)
        return {k: self._held[k] + update[k] for k in self._held}

    def aggregate_train(self, server_round, replies):
        app = flwr()
        kept, up, fp32, bad = [], 0, 0, 0
        for reply in replies:
            if reply.has_error():
                kept.append(reply)
                continue
            recs = list(reply.content.array_records.items())
            for _, rec in recs[:1]:
                if "nnshare" in rec.keys():
                    up += len(bytes(rec["nnshare"].data))
            try:
                model = self.decode_reply(reply)
            except NNShareError as e:
                bad += 1
                self.rejected.append(Rejected(int(server_round), int(reply.metadata.src_node_id),
                                             type(e).__name__, str(e)))
                log(WARNING, "nnshare: reply from node %s left out of round %s: %s",
                    reply.metadata.src_node_id, server_round, e)
                continue
            reply.content[recs[0][0]] = array_record(model)
            fp32 += 4 * sum(a.size for a in model.values())
            kept.append(reply)
        arrays, metrics = self.strategy.aggregate_train(server_round, kept)
        metrics = app.MetricRecord() if metrics is None else metrics
        metrics["nnshare-uplink-bytes"] = int(up)
        metrics["nnshare-downlink-bytes"] = int(self._down)
        metrics["nnshare-fp32-uplink-bytes"] = int(fp32)
        metrics["nnshare-accepted"] = int(sum(1 for r in kept if not r.has_error()))
        metrics["nnshare-rejected"] = int(bad)
        return arrays, metrics

    def aggregate_evaluate(self, server_round, replies):
        app = flwr()
        metrics = self.strategy.aggregate_evaluate(server_round, replies)
        metrics = app.MetricRecord() if metrics is None else metrics
        metrics["nnshare-downlink-bytes"] = int(self._eval_down)
        return metrics
