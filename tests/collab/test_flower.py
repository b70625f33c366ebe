"""nnshare in Flower without Ray: the strategy wrapper and the client mod driven in process
(a stand-in grid; messages copied per node as a transport would), FedAvg / FedAdam / Krum
unchanged, exact bytes, DP order, and every kind of bad reply."""

import numpy as np
import pytest

pytest.importorskip("flwr")

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict  # noqa: E402,E501
from flwr.client.mod.utils import make_ffn  # noqa: E402
from flwr.serverapp.strategy import FedAdam, FedAvg, Krum  # noqa: E402

from nnshare.collab.codecs import codec, fingerprint  # noqa: E402
from nnshare.collab.feedback import ErrorFeedback  # noqa: E402
from nnshare.collab.flower import NNShareStrategy, nnshare_mod  # noqa: E402
from nnshare.collab.flower_demo import accuracy, initial, local_train, shard  # noqa: E402
from nnshare.collab.flower_wire import ARRAY_KEY, encode_broadcast  # noqa: E402
from nnshare.collab.simulator import digits  # noqa: E402
from nnshare.errors import FormatError, SpecError  # noqa: E402

NODES = 4


@pytest.fixture(autouse=True)
def task_identity():
    """What a SuperLink would set for a ServerApp (messages need a run id outside a real run)."""
    from flwr.supercore.task_identity import TaskIdentity

    old = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0
    yield
    TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = old


class Grid:
    def get_node_ids(self):
        return list(range(1, NODES + 1))


def train_fn(msg, ctxt):
    arrays = {k: v.numpy() for k, v in msg.content["arrays"].items()}
    x, y = shard(ctxt.node_id - 1, NODES)
    rnd = int(msg.content["config"]["server-round"])
    local = local_train(arrays, x, y, seed=1000 * rnd + ctxt.node_id)
    return Message(RecordDict({"arrays": ArrayRecord({k: Array(v) for k, v in local.items()}),
                               "metrics": MetricRecord({"num-examples": len(y)})}), reply_to=msg)


def contexts():
    return {n: Context(run_id=1, node_id=n, node_config={}, state=RecordDict(), run_config={})
            for n in range(1, NODES + 1)}


def deliver(m):
    """A copy of the message as a node receives it (own RecordDict)."""
    return Message(RecordDict(dict(m.content.items())), dst_node_id=m.metadata.dst_node_id,
                   message_type=m.metadata.message_type)


def run(strategy, rounds=3, mods=(nnshare_mod,), ctx=None, tamper=None):
    ctx = ctx or contexts()
    ffn = make_ffn(train_fn, list(mods))
    arrays = ArrayRecord({k: Array(v) for k, v in initial().items()})
    history = []
    for r in range(1, rounds + 1):
        msgs = list(strategy.configure_train(r, arrays, ConfigRecord(), Grid()))
        replies = [ffn(deliver(m), ctx[m.metadata.dst_node_id]) for m in msgs]
        if tamper:
            replies = tamper(r, replies)
        sizes = [len(rep.content["arrays"][ARRAY_KEY].data) for rep in replies
                 if not rep.has_error() and ARRAY_KEY in rep.content["arrays"]]
        new, metrics = strategy.aggregate_train(r, replies)
        arrays = new if new is not None else arrays
        history.append((msgs, replies, metrics, sizes))
    return {k: v.numpy() for k, v in arrays.items()}, history


@pytest.fixture(scope="module")
def test_set():
    _, _, x, y = digits()
    return x, y


def test_fedavg_with_ef_learns_and_reports_exact_bytes(test_set):
    c = ErrorFeedback(codec("rotated", bits=1, nu=6))
    model, hist = run(NNShareStrategy(FedAvg(fraction_evaluate=0.0), c))
    assert accuracy(model, *test_set) >= 0.85
    for msgs, _, m, sizes in hist:
        # 1 bit per coordinate plus 64 bits of side info, header and framing: the same for every reply
        assert len(set(sizes)) == 1 and m["nnshare-uplink-bytes"] == sum(sizes)
        assert sizes[0] == len(c.codec.encode({"w": np.ones((64, 10)), "b": np.ones(10)}, 0, 1))
        assert sizes[0] < 650 * 4 / 16
        down = len(msgs[0].content["arrays"][ARRAY_KEY].data)
        assert m["nnshare-downlink-bytes"] == NODES * down
        assert m["nnshare-fp32-uplink-bytes"] == NODES * 650 * 4
        assert (m["nnshare-accepted"], m["nnshare-rejected"]) == (NODES, 0)


def test_broadcast_is_lossless_and_base_is_its_fingerprint():
    arrays = initial()
    arrays["w"][3, 4] = 1.25
    s = NNShareStrategy(FedAvg(), codec("fp32"))
    msgs = list(s.configure_train(1, ArrayRecord({k: Array(v) for k, v in arrays.items()}),
                                  ConfigRecord(), Grid()))
    data = bytes(msgs[0].content["arrays"][ARRAY_KEY].data)
    assert data == encode_broadcast(arrays)
    assert s._base == fingerprint(arrays)


def test_fp32_codec_matches_plain_fedavg_exactly():
    """Lossless codec: the wrapped FedAvg's model equals plain FedAvg's bit for bit."""
    wrapped, _ = run(NNShareStrategy(FedAvg(fraction_evaluate=0.0), codec("fp32")), rounds=2)
    plain, _ = run(FedAvg(fraction_evaluate=0.0), rounds=2, mods=())
    for k in plain:
        np.testing.assert_allclose(wrapped[k], plain[k], rtol=0, atol=1e-6)


@pytest.mark.parametrize("inner", [lambda: FedAdam(fraction_evaluate=0.0, eta=0.05),
                                   lambda: Krum(fraction_evaluate=0.0, num_malicious_nodes=0)])
def test_other_strategies_unchanged(inner, test_set):
    model, hist = run(NNShareStrategy(inner(), ErrorFeedback(codec("tcq", bits_per_param=1.0))))
    assert accuracy(model, *test_set) >= 0.8
    assert all(m["nnshare-accepted"] == NODES for _, _, m, _ in hist)


def test_ef_state_lives_in_context_and_belongs_to_the_node():
    ctx = contexts()
    run(NNShareStrategy(FedAvg(fraction_evaluate=0.0), ErrorFeedback(codec("sign"))), rounds=1, ctx=ctx)
    meta = ctx[2].state["nnshare-ef-meta"]
    assert meta["client"] == "2" and meta["kind"] == "ef"
    mem = ctx[2].state["nnshare-ef"]
    assert sorted(mem.keys()) == ["b", "w"] and np.any(mem["w"].numpy() != 0)


def test_bad_replies_are_left_out_and_reported(test_set):
    c = ErrorFeedback(codec("tcq", bits_per_param=1.0))
    s = NNShareStrategy(FedAvg(fraction_evaluate=0.0), c)
    ctx = contexts()
    kept = {}

    def tamper(r, replies):
        for rep in replies:
            node = rep.metadata.src_node_id
            if rep.has_error():
                continue
            data = bytes(rep.content["arrays"][ARRAY_KEY].data)
            if r == 2 and node == 1:  # truncated on the wire
                rep.content["arrays"] = ArrayRecord({ARRAY_KEY: Array(
                    dtype="uint8", shape=(50,), stype="nnshare/update", data=data[:50])})
            if r == 3 and node == 2:  # last round's reply again: coded against another broadcast
                rep.content["arrays"] = ArrayRecord({ARRAY_KEY: Array(
                    dtype="uint8", shape=(len(kept[node]),), stype="nnshare/update", data=kept[node])})
            kept[node] = data
        return replies

    # before round 3 node 3's state is relabelled as another client's
    orig = s.configure_train

    def configure(r, *a):
        if r == 3:
            ctx[3].state["nnshare-ef-meta"]["client"] = "4"
        return orig(r, *a)

    s.configure_train = configure
    model, hist = run(s, ctx=ctx, tamper=tamper)
    m2, m3 = hist[1][2], hist[2][2]
    assert (m2["nnshare-accepted"], m2["nnshare-rejected"]) == (3, 1)
    assert (m3["nnshare-accepted"], m3["nnshare-rejected"]) == (2, 1)
    assert [(x.round, x.node) for x in s.rejected] == [(2, 1), (3, 2)]
    assert [x.error for x in s.rejected] == ["FormatError", "FormatError"]
    assert "larger than" in s.rejected[0].reason  # the record claims more bytes than remain
    assert "another round" in s.rejected[1].reason
    err = [rep for rep in hist[2][1] if rep.has_error()]
    assert len(err) == 1 and err[0].metadata.src_node_id == 3
    assert "belongs to client '4'" in err[0].error.reason
    assert accuracy(model, *test_set) >= 0.85  # the rounds went on


def test_norm_capped_decode_and_dp_order():
    from flwr.clientapp.mod import fixedclipping_mod
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping

    dp = DifferentialPrivacyClientSideFixedClipping(FedAvg(fraction_evaluate=0.0), noise_multiplier=0.0,
                                                    clipping_norm=0.5, num_sampled_clients=NODES)
    s = NNShareStrategy(dp, ErrorFeedback(codec("sign")))
    assert s.max_norm == 0.5  # taken from the DP wrapper
    held = initial()
    model, hist = run(s, rounds=2, mods=(nnshare_mod, fixedclipping_mod))
    assert all(m["nnshare-accepted"] == NODES for _, _, m, _ in hist)
    assert s.capped > 0  # sign coding with EF sends more than the clipped norm: capped
    # every decoded update was capped at the clipping norm, so the average moved at most that far
    step = np.sqrt(sum(np.sum((model[k] - held[k]) ** 2) for k in held))
    assert step <= 2 * 0.5 + 1e-5


def test_refused_configurations():
    with pytest.raises(SpecError, match="ef21"):
        NNShareStrategy(FedAvg(), ErrorFeedback(codec("sign"), kind="ef21"))
    with pytest.raises(SpecError, match="max_norm"):
        NNShareStrategy(FedAvg(), codec("sign"), max_norm=-1.0)
    with pytest.raises(SpecError, match="codec"):
        NNShareStrategy(FedAvg(), "tcq")


def test_decode_reply_refuses_non_nnshare_arrays():
    s = NNShareStrategy(FedAvg(fraction_evaluate=0.0), codec("fp32"))
    list(s.configure_train(1, ArrayRecord({k: Array(v) for k, v in initial().items()}),
                           ConfigRecord(), Grid()))
    m = Message(RecordDict({"arrays": ArrayRecord({k: Array(v)
                                                    for k, v in initial().items()})}),
                dst_node_id=1, message_type=MessageType.TRAIN)
    with pytest.raises(FormatError, match="not an nnshare stream record"):
        s.decode_reply(m)
