import pytest
import torch
from qat_nets import MixedNet, mixed_batch


@pytest.fixture
def mixed_net():
    torch.manual_seed(0)
    net = MixedNet()
    net.train()
    net(mixed_batch(32, 1))  # give the BatchNorm real statistics
    return net


@pytest.fixture(scope="session")
def digits_float():
    """(float MLP 64-32-10 trained on digits, (x_train, y_train, x_test, y_test))."""
    from nnshare.digits import digits_data, digits_mlp, train_classifier

    torch.set_num_threads(1)
    data = digits_data(0)
    model = train_classifier(digits_mlp((32,), 0), data[0], data[1], epochs=25)
    return model, data
