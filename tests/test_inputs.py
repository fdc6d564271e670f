"""acezoo.point_cloud: a pretrained model on your own tensors gives what the data pipeline gives."""
from __future__ import annotations

import pytest
import torch

import acezoo
from acezoo import registry


@pytest.fixture(scope="module")
def nbody():
    model = acezoo.load("egnn-nbody-ace")
    spec = model.acezoo_config.data.model_copy(update={"n_train": 1, "n_val": 1, "n_test": 6, "seed": 11})
    return model, registry.get_dataset(spec.dataset).builder(spec).test


@torch.no_grad()
def test_point_cloud_matches_the_data_pipeline(nbody) -> None:
    model, test = nbody
    f = test.fields
    expected = model(test.collate(list(range(6))))
    x = acezoo.point_cloud(f["pos"], f["vel"], charge=f["charge"].squeeze(-1))  # charges as (B, N)
    got = model(x)
    assert torch.equal(got, expected)
    assert x.unstack(got).shape == (6, 5, 3)
    one = acezoo.point_cloud(f["pos"][2], f["vel"][2], charge=f["charge"][2])  # one system, (N, 3)
    torch.testing.assert_close(model(one), expected[10:15], atol=1e-5, rtol=1e-5)


def test_point_cloud_edges_and_extra_fields() -> None:
    x = acezoo.point_cloud(torch.zeros(2, 3, 3), edge_index=torch.tensor([[0, 1], [1, 2]]),
                           edge_attr=torch.tensor([[1.0], [2.0]]), height=torch.ones(2, 3, 1))
    assert x.edge_index.tolist() == [[0, 1, 3, 4], [1, 2, 4, 5]]
    assert x.edge_attr.squeeze(-1).tolist() == [1.0, 2.0, 1.0, 2.0]
    assert x.height.shape == (6, 1) and x.batch.tolist() == [0, 0, 0, 1, 1, 1] and x.num_graphs == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(pos=torch.zeros(2, 3, 2)), r"pos must have shape \(B, N, 3\)"),
    (dict(pos=torch.zeros(2, 3, 3), vel=torch.zeros(2, 4, 3)), "vel has"),
    (dict(pos=torch.zeros(2, 3, 3), edge_index=torch.tensor([[0], [3]])), "node indices < 3"),
    (dict(pos=torch.zeros(2, 3, 3), edge_index=torch.tensor([[0], [1]]), edge_attr=torch.zeros(2, 1)), "edge_attr has 2 rows"),
])
def test_point_cloud_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        acezoo.point_cloud(**kwargs)
