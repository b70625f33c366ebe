"""Trained digits models shared by the export tests (a few seconds on one thread)."""

import pytest

from nnshare.digits import digits_cnn, digits_data, digits_mlp, train_classifier


@pytest.fixture(scope="session")
def digits():
    return digits_data()


@pytest.fixture(scope="session")
def trained_mlp(digits):
    xtr, ytr, _, _ = digits
    return train_classifier(digits_mlp(), xtr, ytr, epochs=15).eval()


@pytest.fixture(scope="session")
def trained_cnn(digits):
    xtr, ytr, _, _ = digits
    return train_classifier(digits_cnn(), xtr, ytr, epochs=8).eval()
