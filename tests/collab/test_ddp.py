"""Two gloo processes on CPU: nnshare's DDP hooks train to the all-reduce baseline's accuracy."""

import pytest

from nnshare.collab.codecs import codec
from nnshare.collab.ddp import CommState
from nnshare.collab.ddp_demo import run
from nnshare.format import SpecError


def test_hooks_reach_the_allreduce_accuracy_with_fewer_bytes():
    res = run(world=2, hooks=("allreduce", "nnshare-allgather", "nnshare-summable"), epochs=4)
    base = res["allreduce"]["accuracy"]
    assert base > 0.85
    for hook in ("nnshare-allgather", "nnshare-summable"):
        assert res[hook]["accuracy"] >= base - 0.01, (hook, res)
    # bytes a rank sends per step: 1-bit rotated streams vs the fp16 hook's 2 bytes per gradient
    fp16 = 2 * res["allreduce"]["params"]
    assert res["nnshare-allgather"]["bytes_per_step"] * 12 < fp16
    assert res["nnshare-summable"]["bytes_per_step"] < 0.6 * fp16


def test_error_feedback_needs_a_contractive_codec():
    with pytest.raises(SpecError, match="contractive"):
        CommState(codec=codec("qsgd"))
    assert CommState(codec=codec("qsgd"), error_feedback=False).codec.name == "qsgd"
