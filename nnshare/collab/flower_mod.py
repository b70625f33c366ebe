"""The ClientApp side of nnshare's Flower adapter: :func:`nnshare_mod`.

Put it first (outermost) in the ClientApp's mods, before any DP clipping mod::

    app = ClientApp(mods=[nnshare_mod, fixedclipping_mod])

On the way in it decodes the broadcast the :class:`~.flower_strategy.NNShareStrategy` sent
(an nnshare model stream) into the ordinary ArrayRecord the inner mods and the train function
expect. On the way out of a train message it codes ``local - broadcast`` (after clipping, so
what is coded is the clipped update) with the codec named in the message's config, as one
Array whose data is the nnshare update stream (base = the broadcast's fingerprint). The
error-feedback memory stays on the node in ``Context.state`` (float32, one array per tensor)
with the node id it belongs to. Any nnshare error becomes an error reply (the server's round
goes on without this client) whose reason names the problem.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import NNShareError, SpecError
from .codecs import fingerprint
from .feedback import ClientState, ErrorFeedback
from .flower_wire import (
    KEY_CODEC,
    KEY_ROUND,
    STATE_ARRAYS,
    STATE_META,
    STYPE_MODEL,
    STYPE_UPDATE,
    array_record,
    decode_broadcast,
    flwr,
    from_description,
    from_record,
    is_stream_record,
    numpy_arrays,
    stream_record,
)


def _error_reply(msg, reason: str):
    from flwr.common.constant import ErrorCode

    app = flwr()
    return app.Message(app.Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=f"nnshare_mod: {reason}"),
                       reply_to=msg)


def _config(msg):
    cfgs = list(msg.content.config_records.values())
    if len(cfgs) != 1:
        raise SpecError(f"expects exactly one ConfigRecord, found {len(cfgs)}")
    return cfgs[0]


def load_state(ctxt, client: str, kind: str) -> ClientState:
    """The error-feedback state kept in ``ctxt.state`` (a fresh one on the first round)."""
    if STATE_META not in ctxt.state:
        return ClientState(client)
    meta = ctxt.state[STATE_META]
    if meta.get("kind") != kind:
        raise SpecError(f"client state holds {meta.get('kind')!r} memory, the codec uses {kind!r}")
    mem = {k: np.asarray(v, np.float32) for k, v in numpy_arrays(ctxt.state[STATE_ARRAYS]).items()}
    return ClientState(str(meta.get("client")), mem)


def save_state(ctxt, state: ClientState, kind: str) -> None:
    app = flwr()
    ctxt.state[STATE_ARRAYS] = array_record(state.memory)
    ctxt.state[STATE_META] = app.ConfigRecord({"client": state.client, "kind": kind})


def nnshare_mod(msg, ctxt, call_next):
    """Flower client mod: decode the nnshare broadcast, run the inner app, code the update."""
    keys = [k for k, r in msg.content.array_records.items() if is_stream_record(r)]
    if not keys:  # not from an nnshare strategy: pass through untouched
        return call_next(msg, ctxt)
    try:
        if len(msg.content.array_records) != 1:
            raise SpecError(f"expects exactly one ArrayRecord, found {len(msg.content.array_records)}")
        key = keys[0]
        glob = decode_broadcast(from_record(msg.content[key], STYPE_MODEL, "the broadcast"))
        msg.content[key] = array_record(glob)
    except NNShareError as e:
        return _error_reply(msg, str(e))
    out = call_next(msg, ctxt)
    if out.has_error() or msg.metadata.message_type != flwr().MessageType.TRAIN:
        return out
    try:
        cfg = _config(msg)
        if KEY_CODEC not in cfg:
            raise SpecError(f"the train config has no {KEY_CODEC!r} (is the server an NNShareStrategy?)")
        c = from_description(str(cfg[KEY_CODEC]))
        records = list(out.content.array_records.items())
        if len(records) != 1:
            raise SpecError(f"the reply must hold exactly one ArrayRecord, found {len(records)}")
        rkey, rec = records[0]
        local = numpy_arrays(rec)
        if list(local) != list(glob):
            raise SpecError("the reply's arrays are not the broadcast's (names or order differ)")
        delta = {}
        for k, a in local.items():
            if a.shape != glob[k].shape:
                raise SpecError(f"reply array {k!r} has shape {a.shape}, the broadcast {glob[k].shape}")
            delta[k] = a - glob[k]
        base = fingerprint(glob)
        rnd = int(cfg.get(KEY_ROUND, cfg.get("server-round", 0)))
        seed = (rnd * 1_000_003 + int(ctxt.node_id)) & 0xFFFFFFFF
        if isinstance(c, ErrorFeedback):
            state = load_state(ctxt, str(ctxt.node_id), c.kind)
            data, _ = c.step(delta, state, str(ctxt.node_id), seed=seed, base=base)
            save_state(ctxt, state, c.kind)
        else:
            data = c.encode(delta, seed, base)
        out.content[rkey] = stream_record(data, STYPE_UPDATE)
    except NNShareError as e:
        return _error_reply(msg, str(e))
    return out
