"""Every registered architecture declares what it reads and returns, and the declaration is true.

Parametrized over the registry (every architecture, every registered example spec): a batch
holding exactly the declared input fields, of the declared shapes, runs the network and gives
the declared output shape (so the network reads nothing undeclared); and a batch missing any
required field, or with one of the wrong shape, is refused with an ``InputError`` naming that
field before any layer runs. A newly registered architecture that declares ``io()`` is checked
here with no new test code.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import acezoo
from acezoo import registry
from acezoo.config.io_fields import ModelIO
from acezoo.errors import InputError
from acezoo.inputs.check import attach, check_input
from acezoo.inputs.describe import describe

CASES = [f"{name}/{example}" for name, entry in sorted(registry.architectures().items()) for example in entry.examples]
GRAPHS, NODES, SIDE = 3, 5, 9


def _spec(case: str) -> acezoo.ArchSpec:
    arch, example = case.split("/")
    return registry.get_arch(arch).example_specs()[example]


def _sizes() -> dict[str, int]:
    edges = GRAPHS * NODES * (NODES - 1)
    return {"n": GRAPHS * NODES, "E": edges, "B": GRAPHS, "H": SIDE, "W": SIDE}


def _declared_inputs(io: ModelIO, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random values of exactly the declared inputs (fully connected graphs of NODES nodes)."""
    sizes = _sizes()
    out: dict[str, torch.Tensor] = {}
    for f in io.inputs:
        if f.name == "edge_index":
            out[f.name] = acezoo.point_cloud(torch.zeros(GRAPHS, NODES, 3)).edge_index
        elif f.name == "batch":
            out[f.name] = torch.arange(GRAPHS).repeat_interleave(NODES)
        elif f.name == "onehot":
            out[f.name] = torch.nn.functional.one_hot(torch.randint(0, f.shape[1], (sizes["n"],), generator=gen),
                                                      f.shape[1]).float()
        else:
            shape = tuple(sizes[s] if isinstance(s, str) else s for s in f.shape)
            out[f.name] = torch.randn(shape, generator=gen)
    return out


def test_every_builtin_architecture_declares_its_inputs() -> None:
    for case in CASES:
        if case.split("/")[0] in ("egnn", "egno", "gcnn", "se3_transformer", "segnn"):
            assert isinstance(_spec(case).io(), ModelIO), case


@pytest.mark.parametrize("case", CASES)
def test_the_declared_inputs_are_all_the_network_reads_and_the_output_is_as_declared(case: str) -> None:
    spec = _spec(case)
    io = spec.io()
    if io is None:
        pytest.skip(f"{case} declares no inputs")
    torch.manual_seed(0)
    model = acezoo.compile_model(spec).eval()
    values = _declared_inputs(io, torch.Generator().manual_seed(1))
    batch = values[io.tensor_input] if io.tensor_input else SimpleNamespace(**values)
    check_input(io, batch, next(model.parameters()))
    with torch.no_grad():
        out = model.prune()(batch)
    expected = tuple(_sizes()[s] if isinstance(s, str) else s for s in io.outputs[0].shape)
    assert tuple(out.shape) == expected, f"{case}: output {tuple(out.shape)}, declared {io.outputs[0].shape_text}"


@pytest.mark.parametrize("case", CASES)
def test_a_missing_or_misshaped_field_is_named_before_any_layer_runs(case: str) -> None:
    spec = _spec(case)
    io = spec.io()
    if io is None:
        pytest.skip(f"{case} declares no inputs")
    net = acezoo.compile_model(spec).prune().eval()
    ran = []
    for module in net.children():
        module.register_forward_pre_hook(lambda *_: ran.append(1))
    attach(net, describe(spec, acezoo.registry.get_dataset("nbody_charged").spec()))
    values = _declared_inputs(io, torch.Generator().manual_seed(1))
    for f in io.inputs:
        if io.tensor_input:  # an image with a channel too many, and no image at all
            bad = torch.randn(GRAPHS, spec.in_channels + 1, SIDE, SIDE)
            with pytest.raises(InputError, match=rf"input `x` has shape \({GRAPHS}, {spec.in_channels + 1}, "):
                net(bad)
            with pytest.raises(InputError, match="input `x` is missing"):
                net(SimpleNamespace(y=bad))
            continue
        broken = {k: v for k, v in values.items() if k != f.name}
        if f.required:
            with pytest.raises(InputError, match=rf"input `{f.name}` is missing; expected {_escape(f.shape_text)}"):
                net(SimpleNamespace(**broken))
        value = values[f.name]  # a fixed last size one too large, else (a bound size) one row too few
        wrong = torch.cat([value, value[..., :1]], -1) if isinstance(f.shape[-1], int) else value[:-1]
        with pytest.raises(InputError, match=rf"input `{f.name}` has shape"):
            net(SimpleNamespace(**broken, **{f.name: wrong}))
    assert not ran, f"{case}: a layer ran before the input was refused"


def _escape(text: str) -> str:
    return text.replace("(", r"\(").replace(")", r"\)")


def test_dtype_device_and_indices_are_checked() -> None:
    spec = registry.get_arch("egnn").example_specs()["default"]
    io = spec.io()
    net = acezoo.compile_model(spec).prune().eval()
    attach(net, describe(spec, registry.get_dataset("nbody_charged").spec()))
    values = _declared_inputs(io, torch.Generator().manual_seed(1))
    with pytest.raises(InputError, match=r"input `pos` is torch.float64 but the model's weights are torch.float32"):
        net(SimpleNamespace(**{**values, "pos": values["pos"].double()}))
    with pytest.raises(InputError, match=r"input `edge_index` has dtype torch.float32; expected an integer tensor"):
        net(SimpleNamespace(**{**values, "edge_index": values["edge_index"].float()}))
    bad = values["edge_index"].clone()
    bad[0, 0] = GRAPHS * NODES
    with pytest.raises(InputError, match=r"input `edge_index` holds indices in \[0, 15\]; expected node indices of "
                                         r"the 15 nodes in \[0, 14\]"):
        net(SimpleNamespace(**{**values, "edge_index": bad}))
    with pytest.raises(InputError, match="not a bare tensor"):
        net(values["pos"])
    with pytest.raises(InputError, match="not from a dict"):
        net(values)
    with torch.no_grad():
        assert net(SimpleNamespace(**values)).shape == (GRAPHS * NODES, 3)  # and the right input passes


def test_segnn_and_egno_inputs_follow_their_spec() -> None:
    """The new architectures' declared inputs follow their options: charges or edge attributes,
    extra node features (EGNO's height) and K frames out."""
    segnn = acezoo.archs.SEGNNSpec(edge_input="edge_attr", edge_dim=2, node_features=["height"]).io()
    assert [f.name for f in segnn.inputs] == ["pos", "vel", "height", "edge_index", "edge_attr", "batch"]
    assert segnn.input("edge_attr").shape == ("E", 2) and segnn.outputs[0].shape == ("n", 3)
    egno = acezoo.archs.EGNOSpec(edge_input="edge_attr", node_features=["height"], frames=5).io()
    assert [f.name for f in egno.inputs] == ["pos", "vel", "height", "edge_index", "edge_attr", "batch"]
    assert egno.outputs[0].shape == ("n", 5, 3)
    assert acezoo.archs.EGNOSpec(frames=1, modes=1).io().input("charge") is not None  # charge_product by default
    assert acezoo.archs.EGNOSpec(frames=1, modes=1).io().outputs[0].shape == ("n", 3)
