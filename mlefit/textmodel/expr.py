"""The expression tree of a text model, its stable rewrites, and its direct numpy evaluation.

A parsed model is a small tree of immutable nodes: numbers (:class:`Num`), names of columns or
parameters (:class:`Sym`), sums (:class:`Add`), products (:class:`Mul`), powers (:class:`Pow`)
and calls of the grammar's functions (:class:`Call`). Subtraction is a sum with a factor -1 and
division a product with a power -1, as in computer algebra, so one pattern matches each form.

The constructors rewrite the forms that lose precision into their stable equivalents, so every
consumer of the tree (the symbolic derivation, the numpy evaluator, the distributions table)
sees only stable forms:

==============================  ================================  ==========================
written                         becomes                           why
==============================  ================================  ==========================
``log(exp(x))``                 ``x``                             no overflow
``log(sigmoid(x))``             ``-softplus(-x)``                 no ``log(0)`` for x << 0
``log(1 - sigmoid(x))``         ``-softplus(x)``                  no ``log(0)`` for x >> 0
``log(1 + z)``, ``log(z + 1)``  ``log1p(z)``                      accurate for small z
``log(1 - z)``                  ``log1p(-z)``                     accurate for small z
``log1p(-sigmoid(x))``          ``-softplus(x)``                  as above
``log(1/x)``, ``log(sqrt(x))``  ``-log(x)``, ``log(x)/2``         one log, no overflow
``exp(x) - 1``                  ``expm1(x)``                      accurate for small x
``1/(1 + exp(-x))``             ``sigmoid(x)``                    no ``log(0)`` downstream
``sigmoid(logit(p))``           ``p`` (and the converse)          exact
==============================  ================================  ==========================

``softplus(x) = log(1 + exp(x))`` is computed as ``max(x, 0) + log1p(exp(-|x|))``, ``sigmoid`` as
``scipy.special.expit`` and ``lgamma`` as ``scipy.special.gammaln`` (never ``log(gamma(x))``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from . import kernels

#: The functions of the grammar and how many arguments each takes.
FUNCTIONS: dict[str, int] = {
    "exp": 1,
    "log": 1,
    "log1p": 1,
    "expm1": 1,
    "sqrt": 1,
    "sigmoid": 1,
    "logit": 1,
    "softplus": 1,
    "lgamma": 1,
    "digamma": 1,
}
#: Other spellings accepted for a function.
ALIASES: dict[str, str] = {"expit": "sigmoid"}


class Expr:
    """A node of the expression tree; Python's arithmetic operators build new nodes."""

    __slots__ = ()

    def __add__(self, other: Any) -> Expr:
        return add(self, wrap(other))

    def __radd__(self, other: Any) -> Expr:
        return add(wrap(other), self)

    def __sub__(self, other: Any) -> Expr:
        return add(self, neg(wrap(other)))

    def __rsub__(self, other: Any) -> Expr:
        return add(wrap(other), neg(self))

    def __mul__(self, other: Any) -> Expr:
        return mul(self, wrap(other))

    def __rmul__(self, other: Any) -> Expr:
        return mul(wrap(other), self)

    def __truediv__(self, other: Any) -> Expr:
        return mul(self, power(wrap(other), Num(-1.0)))

    def __rtruediv__(self, other: Any) -> Expr:
        return mul(wrap(other), power(self, Num(-1.0)))

    def __pow__(self, other: Any) -> Expr:
        return power(self, wrap(other))

    def __rpow__(self, other: Any) -> Expr:
        return power(wrap(other), self)

    def __neg__(self) -> Expr:
        return neg(self)


@dataclass(frozen=True, slots=True)
class Num(Expr):
    """A number (float64)."""

    value: float

    def __str__(self) -> str:
        v = self.value
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


@dataclass(frozen=True, slots=True)
class Sym(Expr):
    """A name: a data column or a parameter (which one is decided against the data's columns)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Add(Expr):
    """A sum of two or more terms."""

    terms: tuple[Expr, ...]

    def __str__(self) -> str:
        out = str(self.terms[0])
        for t in self.terms[1:]:
            s = str(t)
            out += f" - {s[1:]}" if s.startswith("-") else f" + {s}"
        return out


@dataclass(frozen=True, slots=True)
class Mul(Expr):
    """A product of two or more factors (a number, if any, first)."""

    factors: tuple[Expr, ...]

    def __str__(self) -> str:
        head, rest = self.factors[0], self.factors[1:]
        if isinstance(head, Num) and head.value == -1.0:
            return "-" + _mul_text(rest)
        return _mul_text(self.factors)


@dataclass(frozen=True, slots=True)
class Pow(Expr):
    """``base ** exponent``."""

    base: Expr
    exponent: Expr

    def __str__(self) -> str:
        return f"{_atom_text(self.base)}**{_atom_text(self.exponent)}"


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A call of one of the grammar's :data:`FUNCTIONS`."""

    func: str
    args: tuple[Expr, ...]

    def __str__(self) -> str:
        return f"{self.func}({', '.join(str(a) for a in self.args)})"


def _atom_text(e: Expr) -> str:
    s = str(e)
    return s if isinstance(e, (Sym, Call)) or (isinstance(e, Num) and e.value >= 0) else f"({s})"


def _mul_text(factors: tuple[Expr, ...]) -> str:
    parts = []
    for f in factors:
        if isinstance(f, Pow) and isinstance(f.exponent, Num) and f.exponent.value == -1.0 and parts:
            parts[-1] += f"/{_atom_text(f.base)}"
        else:
            parts.append(_atom_text(f) if isinstance(f, (Add, Mul)) or (isinstance(f, Num) and f.value < 0) else str(f))
    return "*".join(parts)


def wrap(x: Any) -> Expr:
    """``x`` as a node: nodes pass through, Python numbers become :class:`Num`."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return Num(float(x))
    raise TypeError(f"cannot use {type(x).__name__} in a model expression")


ONE = Num(1.0)


# -- constructors: flatten, fold numbers, rewrite to stable forms ---------------------------------
def add(*terms: Expr) -> Expr:
    """The sum of ``terms``, flattened, with its numbers folded into one (last) term."""
    flat: list[Expr] = []
    const = 0.0
    for t in terms:
        for u in t.terms if isinstance(t, Add) else (t,):
            if isinstance(u, Num):
                const += u.value
            else:
                flat.append(u)
    flat = _expm1_terms(flat, const)
    if isinstance(flat, Expr):
        return flat
    if const != 0.0 or not flat:
        flat.append(Num(const))
    return flat[0] if len(flat) == 1 else Add(tuple(flat))


def _expm1_terms(flat: list[Expr], const: float) -> list[Expr] | Expr:
    """``exp(x) - 1`` as ``expm1(x)`` when the sum is exactly those two terms."""
    if const == -1.0 and len(flat) == 1 and isinstance(flat[0], Call) and flat[0].func == "exp":
        return Call("expm1", flat[0].args)
    return flat


def mul(*factors: Expr) -> Expr:
    """The product of ``factors``, flattened, with its numbers folded into one (first) factor."""
    flat: list[Expr] = []
    const = 1.0
    for f in factors:
        for u in f.factors if isinstance(f, Mul) else (f,):
            if isinstance(u, Num):
                const *= u.value
            else:
                flat.append(u)
    if not flat:
        return Num(const)
    if const != 1.0:  # a factor 0 stays: the names it multiplies are still the user's names
        flat.insert(0, Num(const))
    return flat[0] if len(flat) == 1 else Mul(tuple(flat))


def neg(x: Expr) -> Expr:
    """``-x``."""
    return mul(Num(-1.0), x)


def power(base: Expr, exponent: Expr) -> Expr:
    """``base ** exponent``, folded when both are numbers."""
    if isinstance(exponent, Num):
        if exponent.value == 1.0:
            return base
        if exponent.value == 0.0:
            return ONE
        if isinstance(base, Num):
            with np.errstate(all="ignore"):
                value = np.float64(base.value) ** np.float64(exponent.value)
            if np.isfinite(value):
                return Num(float(value))
        if (
            isinstance(base, Pow) and isinstance(base.exponent, Num)
            and float(exponent.value).is_integer() and float(base.exponent.value).is_integer()
        ):  # (x**a)**k = x**(a k) for integers a and k, whatever the sign of x
            return power(base.base, Num(base.exponent.value * exponent.value))
        if isinstance(base, Call) and base.func == "exp":  # exp(x)**k = exp(k x) for real k
            return call("exp", mul(exponent, base.args[0]))
        if exponent.value == -1.0 and isinstance(base, Add) and len(base.terms) == 2 and base.terms[1] == ONE:
            t = base.terms[0]
            if isinstance(t, Call) and t.func == "exp":  # 1/(1 + exp(-x)) = sigmoid(x)
                return call("sigmoid", neg(t.args[0]))
    return Pow(base, exponent)


def _one_plus(x: Expr) -> Expr | None:
    """``z`` when ``x`` is ``1 + z``, else None."""
    if isinstance(x, Add) and x.terms[-1] == ONE:
        return add(*x.terms[:-1])
    return None


def call(func: str, *args: Expr) -> Expr:
    """A call of ``func``, rewritten into a stable form where one applies (see the module docs)."""
    func = ALIASES.get(func, func)
    (x,) = args
    if isinstance(x, Num) and func in _NUMPY_FUNCTIONS:  # fold constants such as log(2)
        with np.errstate(all="ignore"):
            value = float(_NUMPY_FUNCTIONS[func](np.float64(x.value)))
        if math.isfinite(value):
            return Num(value)
    if isinstance(x, Call):
        inner, (t,) = x.func, x.args
        if func == "log" and inner == "exp":
            return t
        if func == "log" and inner == "sigmoid":
            return neg(call("softplus", neg(t)))
        if func == "log" and inner == "sqrt":
            return mul(Num(0.5), call("log", t))
        if (func, inner) in (("sigmoid", "logit"), ("logit", "sigmoid")):
            return t
    if func == "log" and isinstance(x, Pow) and x.exponent == Num(-1.0):
        return neg(call("log", x.base))
    if func in ("log", "log1p"):
        z = x if func == "log1p" else _one_plus(x)
        if z is not None:
            t = _negated(z)
            if isinstance(t, Call) and t.func == "sigmoid":  # log(1 - sigmoid(u)) = -softplus(u)
                return neg(call("softplus", t.args[0]))
            return Call("log1p", (z,))
    return Call(func, (x,))


def _negated(x: Expr) -> Expr | None:
    """``t`` when ``x`` is ``-t``, else None."""
    if isinstance(x, Mul) and x.factors[0] == Num(-1.0):
        return mul(*x.factors[1:])
    return None


# -- walking the tree -----------------------------------------------------------------------------
def children(e: Expr) -> tuple[Expr, ...]:
    """The nodes directly below ``e``."""
    if isinstance(e, Add):
        return e.terms
    if isinstance(e, Mul):
        return e.factors
    if isinstance(e, Pow):
        return (e.base, e.exponent)
    if isinstance(e, Call):
        return e.args
    return ()


def names_in(e: Expr, found: dict[str, None] | None = None) -> dict[str, None]:
    """The names in ``e`` in order of first appearance (a dict used as an ordered set)."""
    found = {} if found is None else found
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Sym):
            found.setdefault(node.name)
        stack.extend(reversed(children(node)))
    return found


def substitute(e: Expr, values: Mapping[str, Expr]) -> Expr:
    """``e`` with the names in ``values`` replaced (rebuilt through the stable constructors)."""
    if isinstance(e, Sym):
        return values.get(e.name, e)
    if isinstance(e, Num):
        return e
    if isinstance(e, Add):
        return add(*(substitute(t, values) for t in e.terms))
    if isinstance(e, Mul):
        return mul(*(substitute(f, values) for f in e.factors))
    if isinstance(e, Pow):
        return power(substitute(e.base, values), substitute(e.exponent, values))
    assert isinstance(e, Call)
    return call(e.func, *(substitute(a, values) for a in e.args))


# -- numpy evaluation -----------------------------------------------------------------------------
def _special(name: str) -> Callable:
    def f(x):
        import scipy.special

        return getattr(scipy.special, name)(x)

    return f


_NUMPY_FUNCTIONS: dict[str, Callable] = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "sigmoid": _special("expit"),
    "logit": _special("logit"),
    "softplus": kernels.softplus,
    "lgamma": _special("gammaln"),
    "digamma": _special("psi"),
}


def evaluate(e: Expr, env: Mapping[str, Any]) -> Any:
    """The value of ``e`` with numpy, its names taken from ``env`` (scalars or arrays (n_obs,)).

    Call inside ``np.errstate(all="ignore")`` where non-finite values are expected and handled.
    """
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Sym):
        return env[e.name]
    if isinstance(e, Add):
        out = evaluate(e.terms[0], env)
        for t in e.terms[1:]:
            out = out + evaluate(t, env)
        return out
    if isinstance(e, Mul):
        out = evaluate(e.factors[0], env)
        for f in e.factors[1:]:
            if isinstance(f, Pow) and f.exponent == Num(-1.0):
                out = out / evaluate(f.base, env)
            else:
                out = out * evaluate(f, env)
        return out
    if isinstance(e, Pow):
        base = evaluate(e.base, env)
        if isinstance(e.exponent, Num):
            k = e.exponent.value
            if k == 2.0:
                return base * base
            if k == -1.0:
                return 1.0 / np.asarray(base, dtype=float)
            if k == 0.5:
                return np.sqrt(base)
        return np.power(np.asarray(base, dtype=float), evaluate(e.exponent, env))
    assert isinstance(e, Call)
    return _NUMPY_FUNCTIONS[e.func](*(evaluate(a, env) for a in e.args))
