"""nnshare in Flower (``pip install 'nnshare[flower]'``, flwr 1.42): the ClientApp mod
:func:`nnshare_mod` and the Strategy wrapper :class:`NNShareStrategy`.

Server::

    strategy = NNShareStrategy(FedAvg(...), ErrorFeedback(codec("tcq", bits_per_param=0.5)))
    result = strategy.start(grid=grid, initial_arrays=arrays, num_rounds=30)
    result.train_metrics_clientapp[r]["nnshare-uplink-bytes"]   # exact bytes of round r

Client::

    app = ClientApp(mods=[nnshare_mod])                     # with DP: [nnshare_mod, fixedclipping_mod]

The train function is unchanged: it gets the broadcast as an ordinary ArrayRecord and returns
its local model; the mod sends ``local - broadcast`` as an nnshare update stream and keeps the
error-feedback memory in ``Context.state``.
"""

from .flower_mod import nnshare_mod
from .flower_strategy import NNShareStrategy, Rejected

__all__ = ["NNShareStrategy", "Rejected", "nnshare_mod"]
