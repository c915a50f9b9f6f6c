"""Factorized layers and compressed models export and compile as plain ATen / ONNX graphs.

``torch.export`` graphs hold only standard ``aten``/``prims`` operators, ONNX exports only
default-domain nodes (no custom ops: each layer is a sequence of conv / matmul / reshape),
and ``torch.export``, ONNX Runtime and ``torch.compile`` (inductor) give eager's outputs
and gradients to float32 round-off.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import operator
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

import tensornet as tn

torch = pytest.importorskip("torch")
from torch import Tensor, nn  # noqa: E402
from torch.export import ExportedProgram  # noqa: E402

from tensornet_torch import compress  # noqa: E402
from tensornet_torch.demo import ResNet  # noqa: E402
from tensornet_torch.layers import (  # noqa: E402
    CPConv2d,
    STRConv2d,
    STTConv2d,
    STTuckerConv2d,
    TRConv2d,
    TTConv2d,
    TTLinear,
    TuckerConv2d,
)

EPS = float(torch.finfo(torch.float32).eps)
MODES = ("factorized", "dense")
CONV_INPUT = (2, 16, 8, 8)
LINEAR_INPUT = (2, 3, 64)
MODEL_INPUT = (4, 1, 16, 16)
MODEL_METHODS = ("rsdtr", "tt", "tucker")

ALLOWED_ATEN = frozenset(
    {
        # the products every layer is made of
        *("conv2d", "convolution", "mm", "bmm", "matmul", "addmm", "einsum", "linear"),
        # layout
        *("view", "reshape", "permute", "expand", "contiguous", "clone", "transpose", "t"),
        "numpy_T",  # Tensor.T
        *("unsqueeze", "squeeze", "select", "slice", "flatten", "pad", "constant_pad_nd"),
        # elementwise and reductions
        *("add", "add_", "mul", "mul_", "sub", "div", "sum", "mean", "relu"),
        "batch_norm",
        "_native_batch_norm_legit_no_training",
        # STRConv2d's partial trace: the sum of the k diagonal blocks of its first core
        "diagonal",
        "_to_copy",  # dtype / device conversion
    }
)
"""Base names of the ATen operators a graph may hold: standard products, layout, pointwise."""


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only add overhead (and contend on shared machines)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the layers ----------------------------------------------------------------------------------
def _conv() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(16, 32, 3, padding=1)


LAYERS: dict[str, Callable[[], nn.Module]] = {
    "TuckerConv2d": lambda: TuckerConv2d.from_conv(_conv(), ranks=(8, 4)),
    "CPConv2d": lambda: CPConv2d.from_conv(_conv(), ranks=6, n_iter_max=5, rng=0),
    "TTConv2d": lambda: TTConv2d.from_conv(_conv(), ranks=4),
    "TRConv2d": lambda: TRConv2d.from_conv(_conv(), ranks=(2, 2, 2, 2)),
    "STTConv2d": lambda: STTConv2d.from_conv(_conv(), ranks=4, k=2, n_iter_max=5, rng=0),
    "STRConv2d": lambda: STRConv2d.from_conv(_conv(), ranks=(2, 4, 2, 2), k=2, n_iter_max=5, rng=0),
    "STTuckerConv2d": lambda: STTuckerConv2d.from_conv(
        _conv(), ranks=(8, 4), k=2, n_iter_max=5, rng=0
    ),
    "TTLinear": lambda: TTLinear.from_linear(nn.Linear(64, 32), ranks=4),
}
"""Each factorized layer, fitted to a pretrained layer (16 -> 32 channels, 3x3, padding 1;
64 -> 32 features). The fits' accuracy is irrelevant here: few ALS sweeps suffice."""


@functools.cache
def _fitted(name: str) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.ConvergenceWarning)
        return LAYERS[name]()


def _layer(name: str, mode: str) -> nn.Module:
    """A fresh copy of layer ``name`` (float32, CPU, eval mode) running path ``mode``."""
    layer: Any = copy.deepcopy(_fitted(name)).eval()
    layer.forward_mode = mode
    return layer


def _input(name: str, seed: int = 1) -> Tensor:
    shape = LINEAR_INPUT if name == "TTLinear" else CONV_INPUT
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# -- the compressed models -----------------------------------------------------------------------
@functools.cache
def _compressed(method: str) -> nn.Module:
    """ResNet-8 compressed to half its parameters with ``method``, eval mode; do not modify."""
    torch.manual_seed(0)
    model = ResNet(blocks=1).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tn.ConvergenceWarning)
        small, report = compress(model, method=method, ratio=2.0, progress=False)
    assert report.layers, f"compress(method={method!r}) replaced no layer"
    return small.eval()


def _model_input(seed: int = 2) -> Tensor:
    return torch.randn(MODEL_INPUT, generator=torch.Generator().manual_seed(seed))


# -- checks --------------------------------------------------------------------------------------
def _assert_close(actual: Any, expected: Tensor, ulps: float, what: str) -> None:
    """``||actual - expected|| <= ulps * eps * ||expected||`` (float32 eps, Frobenius norms)."""
    actual, expected = torch.as_tensor(actual).detach().to(expected.device), expected.detach()
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = float(torch.linalg.vector_norm(actual - expected))
    scale = float(torch.linalg.vector_norm(expected))
    assert scale > 0, f"{what}: the eager output is zero, the comparison proves nothing"
    assert err <= ulps * EPS * scale, (
        f"{what}: relative error {err / scale:.3g} = {err / scale / EPS:.3g} eps > {ulps} eps"
    )


def _foreign_ops(program: ExportedProgram) -> list[str]:
    """Operators of ``program``'s graph outside the allow-list (custom ops included)."""
    foreign = set()
    for node in program.graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        target = node.target
        if not isinstance(target, torch._ops.OpOverload):
            foreign.add(repr(target))
        elif target.namespace == "prims":
            continue
        elif target.namespace != "aten" or target._opname not in ALLOWED_ATEN:
            foreign.add(target.name())
    return sorted(foreign)


def _check_export(module: nn.Module, args: tuple[Tensor, ...], ulps: float, what: str) -> None:
    """``torch.export.export(module, args)``: allowed operators only; eager's output."""
    expected = module(*args)
    program = torch.export.export(module, args)
    assert not _foreign_ops(program), f"{what}: non-standard operators {_foreign_ops(program)}"
    _assert_close(program.module()(*args), expected, ulps, what)


@contextlib.contextmanager
def _quiet_onnx_exporter() -> Iterator[None]:
    """Silence the exporter's progress lines, log records and warnings."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _onnx_export(module: nn.Module, args: tuple[Tensor, ...]) -> Any:
    """The ONNX ``ModelProto`` of ``module`` (dynamo exporter), checked by ``onnx.checker``."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    with _quiet_onnx_exporter():
        program = torch.onnx.export(module, args, dynamo=True)
    assert program is not None
    proto = program.model_proto
    onnx.checker.check_model(proto)
    return proto


def _custom_nodes(proto: Any) -> list[str]:
    """``domain::op_type`` of the nodes outside the default ONNX domain, and local functions."""
    nodes = {f"{n.domain}::{n.op_type}" for n in proto.graph.node}
    functions = {f"function {f.domain}::{f.name}" for f in proto.functions}
    return sorted({n for n in nodes if not n.startswith(("::", "ai.onnx::"))} | functions)


def _onnx_run(proto: Any, args: Sequence[Tensor]) -> list[np.ndarray] | None:
    """The outputs of ``proto`` under ONNX Runtime on the CPU; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    assert len(names) == len(args), f"ONNX inputs {names} for {len(args)} arguments"
    feeds = {n: a.detach().cpu().numpy() for n, a in zip(names, args, strict=True)}
    return list(session.run(None, feeds))


@functools.cache
def _custom_twice() -> Any:
    """A custom operator ``tensornet_tests::twice`` (registered once per process)."""

    @torch.library.custom_op("tensornet_tests::twice", mutates_args=())
    def twice(x: Tensor) -> Tensor:
        return 2 * x

    @twice.register_fake
    def _(x: Tensor) -> Tensor:
        return torch.empty_like(x)

    return twice


def test_operator_check_flags_custom_and_non_standard_operators() -> None:
    twice = _custom_twice()

    class Model(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return torch.sin(twice(x)).reshape(-1)

    program = torch.export.export(Model(), (torch.randn(2, 3),))
    assert _foreign_ops(program) == ["aten::sin", "tensornet_tests::twice"]


def test_onnx_node_check_flags_custom_domains_and_local_functions() -> None:
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Twice", ["y"], ["z"], domain="tensornet"),
        helper.make_node("Local", ["z"], ["w"], domain="pkg.local"),
    ]
    value = functools.partial(helper.make_tensor_value_info, elem_type=onnx.TensorProto.FLOAT)
    graph = helper.make_graph(nodes, "g", [value("x", shape=[2])], [value("w", shape=[2])])
    local = helper.make_function("pkg.local", "Local", ["a"], ["b"], [], [])
    model = helper.make_model(graph, functions=[local])
    assert _custom_nodes(model) == [
        "function pkg.local::Local",
        "pkg.local::Local",
        "tensornet::Twice",
    ]


# -- torch.export of every layer on both paths ---------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_torch_export_of_layer_has_standard_aten_ops_and_eager_output(name: str, mode: str) -> None:
    layer = _layer(name, mode)
    _check_export(layer, (_input(name),), ulps=16, what=f"{name} ({mode})")


# -- ONNX export of every layer on both paths ----------------------------------------------------
class _Bundle(nn.Module):
    """Every layer on both paths side by side: one ONNX export for all (the exporter's setup,
    about 2 s per call, would otherwise dominate the module's run time)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = [(name, mode) for name in LAYERS for mode in MODES]
        self.layers = nn.ModuleList(_layer(name, mode) for name, mode in self.keys)

    def forward(self, x: Tensor, features: Tensor) -> tuple[Tensor, ...]:
        return tuple(
            layer(features if name == "TTLinear" else x)
            for (name, _), layer in zip(self.keys, self.layers, strict=True)
        )


@pytest.fixture(scope="module")
def onnx_bundle() -> tuple[Any, dict[tuple[str, str], Tensor], dict[tuple[str, str], Any]]:
    """The bundle's ONNX model, eager outputs and ONNX Runtime outputs (empty without it)."""
    bundle = _Bundle().eval()
    args = (_input("TuckerConv2d"), _input("TTLinear"))
    proto = _onnx_export(bundle, args)
    expected = dict(zip(bundle.keys, bundle(*args), strict=True))
    outputs = _onnx_run(proto, args)
    got = {} if outputs is None else dict(zip(bundle.keys, outputs, strict=True))
    return proto, expected, got


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_onnx_export_of_layer_has_default_domain_nodes_and_eager_output(
    name: str, mode: str, onnx_bundle: Any
) -> None:
    proto, expected, got = onnx_bundle
    assert not _custom_nodes(proto), f"custom ONNX nodes {_custom_nodes(proto)}"
    if got:  # with onnxruntime
        _assert_close(got[name, mode], expected[name, mode], ulps=64, what=f"{name} ({mode}), ORT")


# -- whole compressed models ---------------------------------------------------------------------
@pytest.mark.parametrize("method", MODEL_METHODS)
def test_torch_export_of_compressed_resnet_has_standard_aten_ops_and_eager_output(
    method: str,
) -> None:
    _check_export(_compressed(method), (_model_input(),), ulps=64, what=f"ResNet-8 ({method})")


@pytest.mark.parametrize("method", MODEL_METHODS)
def test_onnx_export_of_compressed_resnet_has_default_domain_nodes_and_eager_output(
    method: str,
) -> None:
    model = _compressed(method)
    x = _model_input()
    proto = _onnx_export(model, (x,))
    assert not _custom_nodes(proto), f"custom ONNX nodes {_custom_nodes(proto)}"
    outputs = _onnx_run(proto, (x,))
    if outputs is not None:  # with onnxruntime
        _assert_close(outputs[0], model(x), ulps=128, what=f"ResNet-8 ({method}), ORT")


# -- torch.compile -------------------------------------------------------------------------------
@pytest.fixture
def fresh_dynamo() -> Iterator[None]:
    """Compile from scratch and leave no compiled code behind."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


TORCH_JIT_DEPRECATION = "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
"""Raised by torch's own modules that inductor imports (torch.utils.mkldnn)."""


def _missing_compiler(exc: BaseException) -> BaseException | None:
    """Inductor's "no working C++ compiler" error if ``exc`` is or wraps one, else None."""
    from torch._inductor.exc import InvalidCxxCompiler

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, InvalidCxxCompiler) and "compiler" in str(seen).lower():
            return seen
        seen = getattr(seen, "inner_exception", None) or seen.__cause__
    return None


def _call_compiled(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; skips the test when inductor finds no C++ compiler (CPU inductor)."""
    try:
        return fn(*args)
    except Exception as exc:
        missing = _missing_compiler(exc)
        if missing is not None:
            pytest.skip(f"torch.compile (inductor) needs a C++ compiler: {missing}")
        raise


def _check_compiled_training(layer: nn.Module, x: Tensor, what: str) -> None:
    """A compiled copy of ``layer`` in train mode gives eager's output and gradients."""
    eager = layer.train()
    compiled = copy.deepcopy(layer)
    runs = {"eager": (eager, eager), "compiled": (compiled, torch.compile(compiled))}
    upstream: Tensor | None = None
    results = {}
    for key, (module, run) in runs.items():
        inp = x.clone().requires_grad_(True)
        out = _call_compiled(run, inp)
        if upstream is None:
            gen = torch.Generator().manual_seed(3)
            upstream = torch.randn(out.shape, generator=gen).to(out.device)
        out.backward(upstream)
        grads = {n: p.grad for n, p in module.named_parameters()}
        assert all(g is not None for g in grads.values()), f"{key} {what}: missing gradients"
        results[key] = {"output": out, "input gradient": inp.grad, **grads}
    assert results["compiled"].keys() == results["eager"].keys()
    for key, expected in results["eager"].items():
        _assert_close(results["compiled"][key], expected, ulps=64, what=f"compiled {what}: {key}")


@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_compressed_resnet_matches_eager() -> None:
    model = _compressed("rsdtr")
    x = _model_input()
    compiled = torch.compile(model)
    with torch.no_grad():
        out = _call_compiled(compiled, x)
        expected = model(x)
    _assert_close(out, expected, ulps=128, what="compiled ResNet-8 (rsdtr)")


@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
@pytest.mark.usefixtures("fresh_dynamo")
def test_compiled_layer_trains_like_eager() -> None:
    _check_compiled_training(_layer("TTConv2d", "factorized"), _input("TTConv2d"), "TTConv2d")


# -- CUDA ----------------------------------------------------------------------------------------
CUDA_LAYERS = ("TuckerConv2d", "STRConv2d")


@pytest.fixture
def no_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full float32 convolutions and products on CUDA, so that round-off bounds hold."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


@pytest.mark.cuda
@pytest.mark.usefixtures("no_tf32")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CUDA_LAYERS)
def test_cuda_torch_export_of_layer_has_standard_aten_ops_and_eager_output(
    name: str, mode: str
) -> None:
    layer = _layer(name, mode).to("cuda")
    _check_export(layer, (_input(name).to("cuda"),), ulps=16, what=f"{name} ({mode}) on CUDA")


@pytest.mark.cuda
@pytest.mark.filterwarnings(TORCH_JIT_DEPRECATION)
@pytest.mark.usefixtures("no_tf32", "fresh_dynamo")
@pytest.mark.parametrize("name", CUDA_LAYERS)
def test_cuda_compiled_layer_trains_like_eager(name: str) -> None:
    layer = _layer(name, "factorized").to("cuda")
    _check_compiled_training(layer, _input(name).to("cuda"), f"{name} on CUDA")
