import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread is as fast and does not fight the other test processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
