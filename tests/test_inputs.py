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


# -- every task family: your own tensors in, a prediction out, a clear error for a missing field --------
def _split(name: str, split: str = "test"):
    model = acezoo.load(name)
    spec = model.acezoo_config.data
    return model, getattr(registry.get_dataset(spec.dataset).builder(spec), split)


@torch.no_grad()
def test_nbody_without_charges_names_the_missing_field(nbody) -> None:
    model, test = nbody
    f = test.fields
    with pytest.raises(acezoo.InputError, match=r"input `charge` is missing; expected \(n, 1\) = \(30, 1\) float: "
                                                r"charges, \+1 or -1\. Build the input with "
                                                r"acezoo.point_cloud\(pos, vel, charge=charge\)"):
        model(acezoo.point_cloud(f["pos"], f["vel"]))
    flat = acezoo.point_cloud(f["pos"], f["vel"], charge=f["charge"])
    flat.charge = flat.charge.squeeze(-1)  # (n,): would fail deep inside the first layer
    with pytest.raises(acezoo.InputError, match=r"input `charge` has shape \(30,\); expected \(n, 1\) = \(30, 1\)"):
        model(flat)
    ints = acezoo.point_cloud(f["pos"], f["vel"], charge=f["charge"].squeeze(-1).long())  # +-1 as integers
    assert torch.equal(model(ints), model(test.collate(list(range(6)))))


@torch.no_grad()
def test_mocap_poses_with_the_shipped_skeleton() -> None:
    """MoCap: the skeleton's edges come from the shipped data; a point cloud without charges."""
    model, test = _split("egnn-mocap-strict")  # reads the joint height too
    f = test.fields
    expected = model(test.collate(list(range(4))))
    x = acezoo.mocap_input(f["pos"][:4], f["vel"][:4])
    assert torch.equal(model(x), expected)
    assert x.unstack(model(x)).shape == (4, 31, 3)
    edge_index, edge_attr = acezoo.mocap_skeleton()
    assert torch.equal(edge_index, test.edge_index) and torch.equal(edge_attr, test.edge_attr)
    assert edge_index.shape == (2, 130) and set(edge_attr.flatten().tolist()) == {1.0, 2.0}
    e3 = acezoo.load("egnn-mocap-ace")  # no height: a plain point cloud with the skeleton's edges works too
    plain = acezoo.point_cloud(f["pos"][:4], f["vel"][:4], edge_index=edge_index, edge_attr=edge_attr)
    assert torch.equal(e3(plain), e3(x))
    with pytest.raises(acezoo.InputError, match=r"input `edge_attr` is missing; expected \(E, 1\) = \(3720, 1\) "
                                                r"float: 1 for a bone, 2 for a two-hop pair.*acezoo.mocap_input"):
        e3(acezoo.point_cloud(f["pos"][:4], f["vel"][:4]))  # the call: no edges given
    with pytest.raises(acezoo.InputError, match=r"input `height` is missing"):
        model(plain)
    with pytest.raises(ValueError, match=r"pos must have shape \(B, 31, 3\)"):
        acezoo.mocap_input(torch.zeros(2, 30, 3), torch.zeros(2, 30, 3))


@torch.no_grad()
@pytest.mark.parametrize("name", ["gcnn-digits-ace", "gcnn-advection-resilient"])
def test_images_as_plain_tensors(name: str) -> None:
    model, test = _split(name)
    batch = test.collate(list(range(5)))
    out = model(batch.x)  # (B, C, H, W) directly, as the call did
    assert torch.equal(out, model(batch))
    assert out.shape == ((5, 10) if "digits" in name else tuple(batch.x.shape))
    side = batch.x.shape[-1]
    with pytest.raises(acezoo.InputError, match=rf"input `x` has shape \({side}, {side}\); expected \(B, 1, H, W\)"):
        model(batch.x[0, 0])
    with pytest.raises(acezoo.InputError, match=r"input `x` is torch.float64"):
        model(batch.x.double())


@torch.no_grad()
def test_molecules_from_atoms_and_positions() -> None:
    model, test = _split("egnn-qm9-ace")
    batch = test.collate([0, 1, 2])
    expected = model(batch)
    atoms = [batch.z[batch.ptr[k]:batch.ptr[k + 1]] for k in range(3)]
    symbols = [["HCNOF"[[1, 6, 7, 8, 9].index(int(z))] for z in a] for a in atoms]
    pos = [batch.pos[batch.ptr[k]:batch.ptr[k + 1]] for k in range(3)]
    x = acezoo.molecules(symbols, pos, radius=model.acezoo_config.data.radius)
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)  # the same edges, perhaps in another order
    mev = model.acezoo_inputs.to_units(model(x))
    card_mae = acezoo.load("egnn-qm9-ace").acezoo_info.test_pruned
    assert (mev - batch.y).abs().mean() < 5 * card_mae  # in meV, as the card's metric
    one = acezoo.molecules(atoms[0], pos[0], radius=5.0)  # one molecule, atomic numbers
    torch.testing.assert_close(model(one), expected[:1], atol=1e-5, rtol=1e-5)
    with pytest.raises(acezoo.InputError, match=r"input `onehot` is missing; expected \(n, 5\).*acezoo.molecules"):
        model(acezoo.point_cloud(pos[0]))
    with pytest.raises(ValueError, match=r"element 'Cl' is not one the QM9 models know; allowed: H \(1\), C \(6\)"):
        acezoo.molecules(["C", "Cl"], torch.zeros(2, 3))


def test_every_pretrained_model_documents_its_inputs() -> None:
    """`acezoo info NAME` and the loaded model say what the model reads, with units, and how to build it."""
    from acezoo.hub.pretrained import bundled
    from acezoo.inputs.describe import INPUTS_HEADING

    helpers = {"nbody": "acezoo.point_cloud(pos, vel, charge=charge)", "mocap": "acezoo.mocap_input(pos, vel)",
               "qm9": "acezoo.molecules(atoms, pos, radius=5)", "digits": "a float tensor (B, 1, H, W)",
               "advection": "a float tensor (B, 1, H, W)"}
    from acezoo.hub.card_inputs import inputs_section

    for name, folder in bundled().items():
        card = acezoo.model_card(name)
        assert card.count(INPUTS_HEADING) == 1, name
        shipped = (folder / "README.md").read_text()  # pre-rendered, and equal to what is generated now
        # pre-rendered (cards written since carry it before "Reproduce", older ones at the end)
        assert shipped.count("\n\n" + inputs_section(folder)) == 1, f"{name}: regenerate the card's inputs section"
        section = card.split(INPUTS_HEADING)[1]
        family = next(k for k in helpers if k in name)
        assert helpers[family] in section, (name, section)
        assert "| `pos` | (n, 3) | float |" in section or "| `x` | (B, 1, H, W) | float |" in section, name
        assert "Output: " in section, name
    info = acezoo.load("egnn-nbody-ace").acezoo_inputs
    text = str(info)
    assert "charge" in text and "(n, 1)" in text and "simulation length units" in text and "Shapes: n = " in text

