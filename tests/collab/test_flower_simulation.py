"""nnshare in Flower's own simulation engine: run_simulation offline on Ray (4 SuperNodes, one
CPU each, 3 rounds, usage stats off) with nnshare_mod on the clients and NNShareStrategy around
FedAvg; checks the accuracy, the exact bytes in Flower's metrics, and that faulty replies are
left out of their round (reported) while the run goes on."""

import os

import numpy as np
import pytest

pytest.importorskip("flwr")
pytest.importorskip("ray")

NODES, ROUNDS = 4, 3
# (round, partition): fault injected on the wire by the demo app's fault mod
FAULTS = {(2, 0): "truncate", (3, 1): "replay", (3, 2): "foreign-state"}


@pytest.fixture(scope="module")
def simulation():
    for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "FLWR_TELEMETRY_ENABLED": "0",
                 "RAY_DEDUP_LOGS": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}.items():
        os.environ[k] = v
    from flwr.app import Array, ArrayRecord
    from flwr.serverapp import ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    from nnshare.collab.codecs import codec
    from nnshare.collab.feedback import ErrorFeedback
    from nnshare.collab.flower import NNShareStrategy
    from nnshare.collab.flower_demo import client_app, initial

    out = {}
    server = ServerApp()

    @server.main()
    def main(grid, context):
        s = NNShareStrategy(FedAvg(fraction_evaluate=0.0, min_available_nodes=NODES, min_train_nodes=NODES),
                            ErrorFeedback(codec("rotated", bits=1, nu=6)))
        init = ArrayRecord({k: Array(v) for k, v in initial().items()})
        out["result"] = s.start(grid=grid, initial_arrays=init, num_rounds=ROUNDS)
        out["strategy"] = s

    run_simulation(server, client_app(FAULTS), num_supernodes=NODES,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"num_cpus": 2, "include_dashboard": False,
                                                 "logging_level": "error"}})
    return out


def test_accuracy_and_exact_bytes(simulation):
    from nnshare.collab.codecs import codec
    from nnshare.collab.flower_demo import accuracy, initial
    from nnshare.collab.flower_wire import encode_broadcast
    from nnshare.collab.simulator import digits

    res = simulation["result"]
    model = {k: v.numpy() for k, v in res.arrays.items()}
    _, _, x, y = digits()
    assert accuracy(model, x, y) >= 0.85
    # the 1-bit rotated stream has the same length for every update of this layout
    reply = len(codec("rotated", bits=1, nu=6).encode(initial() | {"b": np.ones(10)}, 0, 1))
    down = len(encode_broadcast(initial()))
    for r in range(1, ROUNDS + 1):
        m = res.train_metrics_clientapp[r]
        sent = NODES - sum(1 for (fr, _), f in FAULTS.items() if fr == r and f == "foreign-state")
        short = sum(1 for (fr, _), f in FAULTS.items() if fr == r and f == "truncate")
        assert m["nnshare-uplink-bytes"] == sent * reply - short * (reply - reply // 2)
        assert m["nnshare-downlink-bytes"] == NODES * down
        assert m["nnshare-fp32-uplink-bytes"] == m["nnshare-accepted"] * 650 * 4


def test_faulty_replies_are_left_out_and_reported(simulation):
    res, s = simulation["result"], simulation["strategy"]
    acc = [res.train_metrics_clientapp[r]["nnshare-accepted"] for r in range(1, ROUNDS + 1)]
    rej = [res.train_metrics_clientapp[r]["nnshare-rejected"] for r in range(1, ROUNDS + 1)]
    assert acc == [4, 3, 2] and rej == [0, 1, 1]
    assert [(x.round, x.error) for x in s.rejected] == [(2, "FormatError"), (3, "FormatError")]
    assert "another round" in s.rejected[1].reason
