"""An op-level record of one forward pass, for the propagation methods LRP and DeepLIFT (docs/algorithms.md §2).

LRP and DeepLIFT need every nonlinearity, pooling and addition of the forward pass as a separate,
addressable step — including ReLU modules that are called twice (torchvision ResNet), in-place
residual additions (``out += identity``), functional ``F.relu`` and data-dependent Python control
flow (input-shape checks). :func:`record` runs the real model once under a
:class:`torch.overrides.TorchFunctionMode` and writes down every tensor operation that touches a
value derived from the input: the function, its arguments, and the values it read and produced.
Nothing of the user's model is changed, copied or hooked; the record is a list of
:class:`Op` in execution order (a tape).

Each operation is classified (:data:`KIND_*`); an operation that touches the input's data flow
and is not one of the supported kinds raises :class:`~cnnlens.errors.CnnlensError` naming it —
never a silent fallback to plain gradients. BatchNorm that directly follows a convolution is
folded into it (:func:`fold_batchnorm`): the folded convolution gives the same output (tested).

Supported: conv1d/conv2d, linear, batch norm, layer norm and group norm (recorded as their
elementary steps), ReLU/ReLU6/hardtanh/PReLU/LeakyReLU/ELU/SELU/GELU/SiLU/Hardswish/Hardsigmoid/
Mish/sigmoid/tanh/softplus/clamp/exp/sqrt/rsqrt/reciprocal/abs/constant powers, max-pool, avg-pool,
adaptive avg-pool, mean/sum, bilinear and nearest interpolation, flatten/view/reshape/permute/
transpose/contiguous/expand/cat/stack/indexing/padding, dropout in eval mode, additions of two
branches (also in place), addition/multiplication by constants (the Classifier's normalisation, the
binary expansion) and elementwise products/quotients of two traced values (:data:`KIND_PRODUCT`:
squeeze-excitation gates, the steps of a normalisation; docs/algorithms.md §2 "Gates and
normalisation"). Products of two traced matrices (attention) are refused.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..errors import CnnlensError

__all__ = ["Op", "Tape", "record", "fold_batchnorm", "vjp", "rerun", "KIND_PARAM", "KIND_ACT",
           "KIND_SELECT", "KIND_MAXPOOL", "KIND_PROP", "KIND_CONST", "KIND_BN", "KIND_IDENTITY",
           "KIND_PRODUCT", "gate_roles"]

T = torch.Tensor

KIND_INPUT = "input"
KIND_PARAM = "param_linear"  # conv / linear: the layers LRP rules act on
KIND_BN = "batch_norm"
KIND_ACT = "activation"  # elementwise nonlinearity of one traced input
KIND_SELECT = "select"  # rearranges or selects values (relevance follows the gradient)
KIND_MAXPOOL = "max_pool"
KIND_PROP = "proportional"  # linear combination of traced values (sums, averages, interpolation)
KIND_CONST = "affine_const"  # traced value plus/times a constant, shape unchanged
KIND_IDENTITY = "identity"  # dropout in eval mode, dtype casts
KIND_PRODUCT = "product"  # product (or quotient) of two traced values: gates, normalisation

_PARAM = {torch.conv2d: "conv2d", torch.conv1d: "conv1d", F.linear: "linear"}
_ACT = {
    F.relu, torch.relu, torch.relu_, T.relu, T.relu_, F.relu6, F.hardtanh, F.hardtanh_,
    torch.prelu, F.prelu, F.leaky_relu, F.leaky_relu_, F.elu, F.elu_, F.selu, F.celu, F.gelu,
    F.silu, F.softplus, F.hardswish, F.hardsigmoid, torch.sigmoid, T.sigmoid, F.sigmoid,
    torch.tanh, T.tanh, F.tanh, torch.clamp, T.clamp, T.clamp_, T.clamp_min, torch.clamp_min,
    F.mish, torch.exp, T.exp, torch.sqrt, T.sqrt, torch.rsqrt, T.rsqrt, torch.reciprocal,
    T.reciprocal, torch.square, T.square, torch.abs, T.abs, T.__abs__, T.__rtruediv__,
}
_POW = {torch.pow, T.pow, T.__pow__}
_SELECT = {
    T.view, T.view_as, T.reshape, T.reshape_as, torch.reshape, torch.flatten, T.flatten,
    T.permute, torch.permute, T.transpose, torch.transpose, T.contiguous, T.clone, torch.clone,
    torch.cat, torch.concat, torch.stack, T.__getitem__, T.squeeze, torch.squeeze, T.unsqueeze,
    torch.unsqueeze, T.expand, T.expand_as, F.pad, T.chunk, torch.chunk, T.split, torch.split,
    T.unbind, torch.unbind, T.narrow, torch.narrow,
}
_MAXPOOL = {F.max_pool2d: "max_pool2d", F.max_pool1d: "max_pool1d"}
_PROP = {
    F.avg_pool2d, F.avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool1d, T.mean,
    torch.mean, T.sum, torch.sum,
}
_ADD = {T.add, T.add_, T.__add__, T.__iadd__, T.__radd__, torch.add,
        T.sub, T.sub_, T.__sub__, T.__isub__, T.__rsub__, torch.sub}
_MUL = {T.mul, T.mul_, T.__mul__, T.__imul__, T.__rmul__, torch.mul, T.__neg__, torch.neg, T.neg}
_DIV = {T.div, T.div_, T.__truediv__, T.__itruediv__, torch.div}
_NORM = {F.layer_norm, F.group_norm}
_IDENTITY = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout, T.to, T.float, T.type_as}
_IGNORED = {"Tensor.__eq__", "Tensor.__ne__", "Tensor.__lt__", "Tensor.__gt__", "Tensor.__le__",
            "Tensor.__ge__", "Tensor.isfinite", "torch.isfinite", "Tensor.isnan", "torch.isnan",
            "Tensor.any", "Tensor.all", "torch.any", "torch.all", "Tensor.__bool__"}
_INPLACE = {T.add_, T.__iadd__, T.sub_, T.__isub__, T.mul_, T.__imul__, T.div_, T.__itruediv__,
            T.relu_, torch.relu_, F.hardtanh_, F.leaky_relu_, F.elu_, T.clamp_}
# functional activations whose positional `inplace` flag sits at this index
_INPLACE_POS = {F.relu: 1, F.hardtanh: 3, F.relu6: 1, F.leaky_relu: 2, F.elu: 2, F.selu: 1,
                F.celu: 2, F.dropout: 3, F.dropout1d: 3, F.dropout2d: 3, F.alpha_dropout: 3,
                F.silu: 1, F.hardswish: 1, F.hardsigmoid: 1}


def _name(func: Callable[..., Any]) -> str:
    mod = getattr(func, "__module__", None) or ""
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    if "boolean_dispatch" in qual:
        qual = getattr(func, "__name__", qual)
    if qual.startswith("_VariableFunctionsClass."):
        return "torch." + qual.split(".", 1)[1]
    if qual.startswith("TensorBase.") or qual.startswith("Tensor."):
        return "Tensor." + qual.split(".", 1)[1]
    return f"{mod}.{qual}" if mod and not qual.startswith(mod) else qual


@dataclasses.dataclass
class Op:
    """One recorded tensor operation.

    Attributes:
        index: position in the tape (0 is the input).
        kind: one of the ``KIND_*`` classes.
        func: the torch function that ran.
        name: a readable name of ``func`` for error messages.
        leaves, spec: the flattened ``(args, kwargs)`` (pytree) of the call.
        traced: positions in ``leaves`` that held traced tensors, with their producers
            ``(op index, output position)``.
        n_out: number of tensor outputs (a tuple output such as ``chunk`` has several).
        fold: for a conv followed by a foldable BatchNorm: per-channel ``(scale, shift)``.
        folded_into: for a folded BatchNorm: the index of its convolution.
    """

    index: int
    kind: str
    func: Callable[..., Any] | None
    name: str
    leaves: list[Any]
    spec: Any
    traced: list[tuple[int, tuple[int, int]]]
    n_out: int = 1
    fold: tuple[torch.Tensor, torch.Tensor] | None = None
    folded_into: int | None = None

    @property
    def producers(self) -> list[tuple[int, int]]:
        return [p for _, p in self.traced]

    def call_args(self, substitutes: Sequence[Any] | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` of the call, with the traced positions replaced by ``substitutes``."""
        leaves = list(self.leaves)
        if substitutes is not None:
            for (pos, _), value in zip(self.traced, substitutes):
                leaves[pos] = value
        args, kwargs = tree_unflatten(leaves, self.spec)
        return args, kwargs

    def arg(self, name: str, position: int, default: Any = None) -> Any:
        """A non-traced argument of the call by keyword or position."""
        args, kwargs = tree_unflatten(self.leaves, self.spec)
        if name in kwargs:
            return kwargs[name]
        return args[position] if len(args) > position else default


class Tape:
    """The record of one forward pass: ``ops`` in order and the value of every output."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.values: dict[tuple[int, int], torch.Tensor] = {}
        self.consumers: dict[tuple[int, int], int] = {}
        self.output: Any = None

    def value(self, ref: tuple[int, int]) -> torch.Tensor:
        return self.values[ref]

    def inputs_of(self, op: Op) -> list[torch.Tensor]:
        return [self.values[p] for p in op.producers]

    def output_of(self, op: Op, pos: int = 0) -> torch.Tensor:
        return self.values[(op.index, pos)]


def _where(root: torch.nn.Module | None) -> str:
    """`` in module 'a.b' (Type)`` for the innermost ``nn.Module`` whose code is running (found on
    the Python call stack, only when an error is raised; nothing is hooked), or ``""``."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            mod = frame.f_locals.get("self")
            if isinstance(mod, torch.nn.Module):
                kind = type(mod).__name__
                names = {id(m): n for n, m in root.named_modules()} if root is not None else {}
                name = names.get(id(mod))
                if name is None:
                    return f" in a {kind} module"
                return f" in module {name!r} ({kind})" if name else f" in the model's own forward ({kind})"
            frame = frame.f_back
        return ""
    finally:
        del frame


class _Recorder(TorchFunctionMode):
    def __init__(self, tape: Tape, root: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.tape = tape
        self.root = root
        self.producer: dict[int, tuple[int, int]] = {}  # id(tensor) -> (op, pos)
        self.alive: list[torch.Tensor] = []  # keeps recorded tensors (and their ids) alive

    def add_input(self, x: torch.Tensor) -> None:
        op = Op(0, KIND_INPUT, None, "input", [], None, [])
        self.tape.ops.append(op)
        self._register_output(op, [x])

    def _register_output(self, op: Op, outs: list[torch.Tensor]) -> None:
        for pos, out in enumerate(outs):
            self.tape.values[(op.index, pos)] = out
            self.producer[id(out)] = (op.index, pos)
            self.alive.append(out)
        op.n_out = len(outs)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        leaves, spec = tree_flatten((args, kwargs))
        traced = [
            (i, self.producer[id(v)]) for i, v in enumerate(leaves)
            if isinstance(v, torch.Tensor) and id(v) in self.producer
            and self.tape.values.get(self.producer[id(v)]) is v
        ]
        if not traced:
            return func(*args, **kwargs)
        if func in _NORM:
            return self._normalise(func, args, kwargs, traced, leaves)
        inplace = func in _INPLACE or kwargs.get("inplace") is True
        pos = _INPLACE_POS.get(func)
        if pos is not None and len(args) > pos and args[pos] is True:
            inplace = True
        if inplace:
            # the value about to be overwritten stays available to everyone who read it
            for i, ref in traced:
                self.tape.values[ref] = leaves[i].detach().clone()
        versions = [leaves[i]._version for i, _ in traced]
        out = func(*args, **kwargs)
        if not inplace and any(leaves[i]._version != v for (i, _), v in zip(traced, versions)):
            raise CnnlensError(f"{_name(func)} changed its input in place in a way LRP/DeepLIFT "
                               "cannot follow; use the out-of-place form in the model")
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if not all(isinstance(o, torch.Tensor) for o in outs):
            if all(not isinstance(o, torch.Tensor) for o in outs):
                return out  # shapes, sizes, flags: no data flow
            raise CnnlensError(f"{_name(func)} returned a mix of tensors and other values; not supported")
        kind = self._classify(func, args, kwargs, leaves, traced)
        if kind is None:
            return out  # e.g. comparisons used for control flow
        op = Op(len(self.tape.ops), kind, func, _name(func), leaves, spec, traced)
        self.tape.ops.append(op)
        for _, ref in traced:
            self.tape.consumers[ref] = self.tape.consumers.get(ref, 0) + 1
        if kind == KIND_MAXPOOL and len(outs) == 2:  # return_indices=True: the indices carry no relevance
            outs = outs[:1]
        self._register_output(op, outs)
        return out

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` through the recorder (used to spell a fused operation in recorded steps)."""
        return self.__torch_function__(func, (), args, kwargs)

    def _normalise(self, func, args, kwargs, traced, leaves) -> torch.Tensor:
        """``layer_norm`` / ``group_norm`` recorded as their elementary steps (docs/algorithms.md §2
        ``lrp``): centring ``c = x − mean(x)`` (linear), ``s = 1/√(mean(c·c) + eps)`` (a gate), ``c·s``,
        then the affine ``·γ + β``. The rules of the steps give the normalisation's rule: LRP passes
        relevance through the centring with σ held constant (Ali et al. 2022), DeepLIFT's product and
        Rescale rules keep completeness exact."""
        if any(pos != 0 for pos, _ in traced):
            raise CnnlensError(f"{_name(func)}{_where(self.root)} with a weight that depends on the input is not supported")
        names = ("input", "normalized_shape", "weight", "bias", "eps") if func is F.layer_norm else \
            ("input", "num_groups", "weight", "bias", "eps")
        bound = dict(zip(names, args))
        bound.update(kwargs)
        x, weight, bias, eps = bound["input"], bound.get("weight"), bound.get("bias"), bound.get("eps", 1e-5)
        call = self._call
        if func is F.layer_norm:
            dims = tuple(range(-len(tuple(bound["normalized_shape"])), 0))
            h = x
        else:
            groups = int(bound["num_groups"])
            h = call(T.reshape, x, (x.shape[0], groups, -1))
            dims = (-1,)
        mu = call(torch.mean, h, dim=dims, keepdim=True)
        c = call(torch.sub, h, mu)
        var = call(torch.mean, call(torch.mul, c, c), dim=dims, keepdim=True)
        y = call(torch.mul, c, call(torch.rsqrt, call(torch.add, var, eps)))
        shape: tuple[int, ...] = ()
        if func is F.group_norm:
            y = call(T.reshape, y, x.shape)
            shape = (-1,) + (1,) * (x.dim() - 2)  # per-channel affine
        if weight is not None:
            y = call(torch.mul, y, weight.reshape(shape) if shape else weight)
        if bias is not None:
            y = call(torch.add, y, bias.reshape(shape) if shape else bias)
        return y

    def _classify(self, func, args, kwargs, leaves, traced) -> str | None:
        n = len(traced)
        if func in _PARAM:
            if traced[0][0] != 0:
                raise CnnlensError(f"{_name(func)} with a traced weight is not supported")
            return KIND_PARAM
        if func is F.batch_norm:
            training = kwargs.get("training", args[5] if len(args) > 5 else False)
            if training:
                raise CnnlensError("batch_norm runs in training mode; LRP/DeepLIFT need eval mode")
            return KIND_BN
        if func in _POW:
            exponent = args[1] if len(args) > 1 else kwargs.get("exponent")
            if n != 1 or traced[0][0] != 0 or isinstance(exponent, torch.Tensor):
                raise CnnlensError(f"{_name(func)}{_where(self.root)} with an exponent that depends on the input is not supported")
            return KIND_ACT
        if func in _DIV:
            divisor = args[1] if len(args) > 1 else kwargs.get("other")
            den = any(leaves[i] is divisor for i, _ in traced)
            if not den:
                return KIND_CONST
            if n == 1:  # constant / traced: an elementwise nonlinearity of the divisor
                if tuple(args[0].shape if isinstance(args[0], torch.Tensor) else ()) not in ((), tuple(divisor.shape)):
                    raise CnnlensError(f"{_name(func)}{_where(self.root)} broadcasts a constant over a traced divisor; not supported")
                return KIND_ACT
            return KIND_PRODUCT
        if func in _ACT:
            if n != 1:
                raise CnnlensError(f"{_name(func)} with {n} traced inputs is not supported")
            return KIND_ACT
        if func in _MAXPOOL:
            return KIND_MAXPOOL
        if func in _SELECT:
            return KIND_SELECT
        if func is F.interpolate:
            mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
            return KIND_SELECT if mode == "nearest" else KIND_PROP
        if func in _PROP:
            return KIND_PROP
        if func in _ADD:
            return KIND_PROP if n == 2 else KIND_CONST
        if func in _MUL:
            return KIND_PRODUCT if n == 2 else KIND_CONST
        if func in _IDENTITY:
            if func in (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout):
                training = kwargs.get("training", args[2] if len(args) > 2 else True)
                if training:
                    raise CnnlensError("dropout runs in training mode; LRP/DeepLIFT need eval mode")
            return KIND_IDENTITY
        name = _name(func)
        if name in _IGNORED:
            return None  # boolean tests used for checks/control flow carry no relevance
        raise CnnlensError(
            f"the model calls {name}{_where(self.root)}, which LRP/DeepLIFT do not support (supported: conv, linear, "
            "batch/layer/group norm, elementwise activations, elementwise products (gates), max/avg pooling, "
            "flatten/reshape, concatenation, residual additions, dropout in eval mode)"
        )


def record(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Tape:
    """Run ``fn(x)`` once and record every operation on values derived from ``x`` (no gradients).

    ``fn`` is typically ``Classifier.forward_unchecked`` (normalisation, model, output selection). Raises
    :class:`CnnlensError` naming the first unsupported operation and the module (dotted name) it runs in.
    """
    tape = Tape()
    owner = getattr(fn, "__self__", None)  # Classifier.forward_unchecked: its model names the modules
    root = fn if isinstance(fn, torch.nn.Module) else getattr(owner, "model", None)
    rec = _Recorder(tape, root if isinstance(root, torch.nn.Module) else None)
    x = x.detach()
    with torch.no_grad():
        rec.add_input(x)
        with rec:
            out = fn(x)
    if not isinstance(out, torch.Tensor) or id(out) not in rec.producer:
        raise CnnlensError("the model output does not depend on the input through recorded operations")
    tape.output = rec.producer[id(out)]
    return tape


def rerun(op: Op, inputs: Sequence[torch.Tensor], **replace: Any) -> Any:
    """Call ``op``'s function again with ``inputs`` at the traced positions (and, for a
    parameterised layer, ``weight=``/``bias=`` replaced)."""
    args, kwargs = op.call_args(inputs)
    if replace:
        args, kwargs = list(args), dict(kwargs)
        for key, position in (("weight", 1), ("bias", 2)):
            if key in replace:
                if key in kwargs or len(args) <= position:
                    kwargs[key] = replace[key]
                else:
                    args[position] = replace[key]
        args = tuple(args)
    if op.func is None:
        raise CnnlensError("cannot re-run the input node")
    if op.func in _INPLACE:
        inputs = [t.clone() for t in inputs]
        args, kwargs = op.call_args(inputs)
    return op.func(*args, **kwargs)


def vjp(op: Op, inputs: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None], **replace: Any) -> list[torch.Tensor]:
    """Vector-Jacobian products of ``op`` at ``inputs`` with output gradients ``grads``.

    Returns one gradient per traced input (zeros where the input does not influence the output).
    """
    leaves = [t.detach().requires_grad_(True) for t in inputs]
    with torch.enable_grad():
        feed = [leaf.clone() if op.func in _INPLACE or _mutates(op) else leaf for leaf in leaves]
        out = rerun(op, feed, **replace)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if op.kind == KIND_MAXPOOL:
            outs = outs[:1]
        pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
        if not pairs:
            return [torch.zeros_like(t) for t in inputs]
        got = torch.autograd.grad([o for o, _ in pairs], leaves, [g for _, g in pairs], allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, got)]


def _mutates(op: Op) -> bool:
    if op.func in _INPLACE:
        return True
    args, kwargs = tree_unflatten(op.leaves, op.spec)
    if kwargs.get("inplace") is True:
        return True
    pos = _INPLACE_POS.get(op.func)
    return pos is not None and len(args) > pos and args[pos] is True


def is_quotient(op: Op) -> bool:
    """Whether a :data:`KIND_PRODUCT` op is ``a / b`` (else ``a · b``)."""
    return op.func in _DIV


def gate_roles(op: Op, inputs: Sequence[torch.Tensor], output: torch.Tensor) -> list[float]:
    """LRP's share of a product's relevance for each factor (docs/algorithms.md §2 ``lrp``).

    A factor that is broadcast over the other (a squeeze-excitation gate ``(N, C, 1, 1)`` times
    features ``(N, C, H, W)``; the ``1/σ`` of a normalisation) is a **gate**: it is held constant and
    the other factor, the signal, receives all relevance (Ali et al. 2022; Achtibat et al. 2024).
    A quotient's divisor is always the gate. Two factors of the output's shape (``h · sigmoid(h)``
    written out, ``c · c``) split it equally — AttnLRP's uniform rule. Either way the shares sum to 1
    (conservation up to the stabiliser)."""
    if is_quotient(op):
        return [1.0, 0.0]
    full = [tuple(a.shape) == tuple(output.shape) for a in inputs]
    if sum(full) == 1:
        return [1.0 if f else 0.0 for f in full]
    return [1.0 / len(inputs)] * len(inputs)


def fold_batchnorm(tape: Tape) -> None:
    """Fold every BatchNorm whose input is the output of a convolution used only by it into that
    convolution (§2 lrp): the convolution gets ``fold = (scale, shift)`` with
    ``scale = γ / √(var + eps)``, ``shift = β − mean·scale``; the BatchNorm passes relevance on."""
    for op in tape.ops:
        if op.kind != KIND_BN:
            continue
        ref = op.producers[0]
        conv = tape.ops[ref[0]]
        if conv.kind != KIND_PARAM or _PARAM[conv.func] not in ("conv2d", "conv1d") or tape.consumers.get(ref, 0) != 1:
            continue
        mean, var = op.arg("running_mean", 1), op.arg("running_var", 2)
        weight, bias, eps = op.arg("weight", 3), op.arg("bias", 4), op.arg("eps", 7, 1e-5)
        if mean is None or var is None:
            continue
        scale = torch.rsqrt(var + eps)
        if weight is not None:
            scale = scale * weight
        shift = -mean * scale
        if bias is not None:
            shift = shift + bias
        conv.fold = (scale, shift)
        op.folded_into = conv.index


def param_layer(op: Op) -> tuple[str, torch.Tensor, torch.Tensor | None]:
    """``(kind, weight, bias)`` of a conv/linear op, with a folded BatchNorm applied."""
    kind = _PARAM[op.func]
    weight, bias = op.arg("weight", 1), op.arg("bias", 2)
    if op.fold is not None:
        scale, shift = op.fold
        weight = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
        bias = shift if bias is None else bias * scale + shift
    return kind, weight, bias


def linear_vjp(op: Op, input_shape: torch.Size, weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """∂(conv/linear with ``weight``)/∂input applied to ``grad`` (no forward pass needed)."""
    kind = _PARAM[op.func]
    if kind == "linear":
        return grad @ weight
    stride, padding = op.arg("stride", 3, 1), op.arg("padding", 4, 0)
    dilation, groups = op.arg("dilation", 5, 1), op.arg("groups", 6, 1)
    if isinstance(padding, str):
        leaf = torch.zeros(input_shape, dtype=grad.dtype, device=grad.device)
        return vjp(op, [leaf], [grad], weight=weight, bias=None)[0]
    fn = torch.nn.grad.conv2d_input if kind == "conv2d" else torch.nn.grad.conv1d_input
    return fn(input_shape, weight, grad, stride=stride, padding=padding, dilation=dilation, groups=groups)


def propagate(
    tape: Tape,
    start: torch.Tensor,
    rule: Callable[[Op, list[torch.Tensor | None]], list[torch.Tensor | None]],
) -> torch.Tensor:
    """Walk the tape backwards from the output with ``start`` (the output's relevance or
    multiplier) and ``rule(op, per-output values) -> per-input values``; contributions of a value
    used several times are summed. Returns what arrives at the input."""
    acc: dict[tuple[int, int], torch.Tensor] = {tape.output: start}
    for op in reversed(tape.ops[1:]):
        outs = [acc.pop((op.index, p), None) for p in range(op.n_out)]
        if all(o is None for o in outs):
            continue
        for ref, value in zip(op.producers, rule(op, outs)):
            if value is None:
                continue
            acc[ref] = acc[ref] + value if ref in acc else value
    got = acc.get((0, 0))
    if got is None:
        return torch.zeros_like(tape.values[(0, 0)])
    return got


def stabilize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``z + eps·sign(z)`` with sign(0) = +1: the LRP denominator stabiliser."""
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)
