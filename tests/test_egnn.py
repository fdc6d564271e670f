"""EGNN options beyond the registry suite: spec errors and the molecule read-out."""
from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch_geometric.data import Batch, Data

import acezoo
from acezoo.archs.egnn import EGNNSpec
from acezoo.data.graphs import fully_connected_edge_index
from acezoo.symmetry import E3GraphInvariant, symmetry_for


def test_spec_errors_say_what_is_allowed() -> None:
    with pytest.raises(ValidationError, match="output `position` needs coord_updates: true"):
        EGNNSpec(coord_updates=False)
    with pytest.raises(ValidationError, match="node_input `atoms` has no charges"):
        EGNNSpec(node_input="atoms", output="graph")
    with pytest.raises(ValidationError, match="node_input `atoms` has no charges"):
        EGNNSpec(node_input="atoms", output="graph", edge_input="none", charge_feature=True)


def test_molecule_mode_reads_out_one_value_per_graph() -> None:
    spec = EGNNSpec(node_input="atoms", edge_input="none", output="graph", out_channels=3, coord_updates=False,
                    edge_gate=True, hidden=8, branch_hidden=8, layers=2)
    assert isinstance(symmetry_for(spec), E3GraphInvariant)
    torch.manual_seed(0)
    model = acezoo.compile_model(spec).eval()
    assert set(model.named_gammas()) == {"layers.0.h", "layers.1.h"}
    x = symmetry_for(spec).example_input(torch.Generator().manual_seed(0), torch.float32)
    out = model(x)
    assert out.shape == (3, 3)
    nodes = x.batch == 1  # graph 1 alone gives the same value as inside the batch
    single = Batch.from_data_list([Data(pos=x.pos[nodes], onehot=x.onehot[nodes],
                                        edge_index=fully_connected_edge_index(int(nodes.sum())))])
    assert torch.allclose(model(single)[0], out[1], atol=1e-5)


def test_dynamics_mode_keeps_its_checkpoint_keys() -> None:
    """The N-body EGNN's parameter names are unchanged (pretrained checkpoints still load)."""
    keys = set(acezoo.compile_model(EGNNSpec(layers=1)).state_dict())
    assert {"net.embed.weight", "net.layers.0.phi_e.0.weight", "net.layers.0.x.eq.phi_v.0.weight",
            "net.layers.0.x.eq.phi_x.0.weight", "net.layers.0.h.eq.phi_h.0.weight", "net.layers.0.x.gamma"} <= keys
    assert not any("readout" in k or "gate" in k for k in keys)
