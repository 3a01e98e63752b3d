"""The grammar of text models: reading ``y ~ normal(mean = a + b*x, sd = exp(s))`` into a tree.

Two forms are read::

    TARGET ~ DISTRIBUTION(argument = EXPR, ...)     (--model)
    EXPR                                            (--nll: the per-row negative log-likelihood)

An ``EXPR`` is built from numbers, names, the operators ``+ - * / **`` (with unary minus and
parentheses) and calls of the functions ``exp, log, log1p, expm1, sqrt, sigmoid`` (alias
``expit``), ``logit, softplus, lgamma, digamma``. Distribution arguments are given by name, or by
position in the order the distributions table lists them. A name is a data column or, when it is
not one, a parameter; that is decided against the data's columns (:func:`split_names`).

The text is parsed with Python's :mod:`ast` and every node is checked against an allow-list; it
is never evaluated. Anything else (attribute access, subscripts, strings, lambdas, comparisons,
other operators or functions, texts longer than :data:`MAX_LENGTH` characters or nested deeper
than :data:`MAX_DEPTH` levels) raises :class:`~mlefit.errors.UsageError` with one sentence naming
the offending token.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import UsageError
from . import expr as E
from .distributions import DISTRIBUTIONS

#: The longest text accepted, in characters.
MAX_LENGTH = 2000
#: The deepest nesting accepted (parentheses, function calls, powers, unary minus); a long sum
#: or product counts as one level.
MAX_DEPTH = 40

EXAMPLE = "write it as 'y ~ normal(mean = a + b*x, sd = exp(log_s))'"

_REFUSED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "a subscript",
    ast.Slice: "a slice",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "a logical operator",
    ast.IfExp: "an if-else expression",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dictionary",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator",
    ast.NamedExpr: "an assignment",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Starred: "'*' unpacking",
    ast.Await: "'await'",
    ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'",
}
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_OTHER_OPERATORS = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.Invert: "~", ast.Not: "not",
}


@dataclass(frozen=True)
class ParsedModel:
    """A model text read into expression trees; names not yet split into columns and parameters.

    Attributes
    ----------
    text : str
        The text as given.
    target : str or None
        The name left of ``~`` (None for an ``--nll`` text).
    distribution : str or None
        The distribution's name (None for an ``--nll`` text).
    args : tuple of (str, Expr)
        The distribution's arguments in the table's order.
    nll : Expr or None
        The per-row NLL of an ``--nll`` text (None for a model).
    written : tuple of str
        The argument names in the order the text gives them (names are found in this order).
    """

    text: str
    target: str | None
    distribution: str | None
    args: tuple[tuple[str, E.Expr], ...]
    nll: E.Expr | None
    written: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """Every name in the text in order of first appearance, the target first."""
        found: dict[str, None] = {}
        if self.target is not None:
            found[self.target] = None
        args = dict(self.args)
        for name in self.written:
            E.names_in(args[name], found)
        if self.nll is not None:
            E.names_in(self.nll, found)
        return list(found)


def parse_model(text: str) -> ParsedModel:
    """Read ``TARGET ~ DISTRIBUTION(argument = EXPR, ...)``.

    Raises
    ------
    UsageError
        The text is outside the grammar, names an unknown distribution or argument, misses an
        argument, or uses the target inside an argument.
    """
    source = _clean(text, "model")
    if source.count("~") != 1:
        if "~" not in source:
            raise UsageError(f"the model '{_short(source)}' has no '~'; {EXAMPLE}.")
        raise UsageError(f"the model '{_short(source)}' has more than one '~'; {EXAMPLE}.")
    left, right = source.split("~")
    target_node, _ = _parse(left, 0, "model")
    if not isinstance(target_node, ast.Name):
        raise UsageError(
            f"the target '{left.strip()}' left of '~' must be a column name; {EXAMPLE}."
        )
    target = _name(target_node, left)
    node, right = _parse(right, len(left) + 1, "model")
    segment = ast.get_source_segment(right, node) or right.strip()
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise UsageError(
            f"the right of '~' must be a distribution with its arguments, not '{_short(segment)}'; {EXAMPLE}."
        )
    dist_name = node.func.id
    if dist_name not in DISTRIBUTIONS:
        close = difflib.get_close_matches(dist_name, DISTRIBUTIONS, n=1)
        raise UsageError(
            f"unknown distribution '{dist_name}'; the distributions are {', '.join(DISTRIBUTIONS)}.",
            hint=f"Did you mean '{close[0]}'?" if close else None,
        )
    dist = DISTRIBUTIONS[dist_name]
    names = dist.args
    given: dict[str, E.Expr] = {}
    if len(node.args) > len(names):
        raise UsageError(
            f"{dist_name} takes {len(names)} argument(s) ({', '.join(names)}); {len(node.args)} are given."
        )
    for name, arg in zip(names, node.args):
        given[name] = _convert(arg, right, "model")
    for kw in node.keywords:
        if kw.arg is None:
            raise UsageError(f"'**' unpacking is not allowed in a model: '{_short(segment)}'.")
        if kw.arg not in names:
            raise UsageError(f"{dist_name} has no argument '{kw.arg}'; its arguments are {', '.join(names)}.")
        if kw.arg in given:
            raise UsageError(f"the argument '{kw.arg}' of {dist_name} is given twice.")
        given[kw.arg] = _convert(kw.value, right, "model")
    for name in names:
        if name not in given:
            raise UsageError(
                f"{dist_name} needs the argument '{name}' (its arguments are {', '.join(names)})."
            )
        if target in E.names_in(given[name]):
            raise UsageError(
                f"the target '{target}' appears in the argument '{name}' of {dist_name}; "
                "an argument may use only other columns and parameters."
            )
    return ParsedModel(text, target, dist_name, tuple((n, given[n]) for n in names), None, tuple(given))


def parse_nll(text: str) -> ParsedModel:
    """Read an ``--nll`` text: one expression, the per-row negative log-likelihood.

    Raises
    ------
    UsageError
        The text is outside the grammar.
    """
    source = _clean(text, "NLL")
    if "~" in source:
        raise UsageError(
            f"the NLL '{_short(source)}' contains '~'; give a model 'y ~ ...' with --model, "
            "or the per-row negative log-likelihood alone with --nll."
        )
    node, source = _parse(source, 0, "NLL")
    return ParsedModel(text, None, None, (), _convert(node, source, "NLL"))


def split_names(parsed: ParsedModel, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """The data columns a model reads (target first) and its parameters, each in order of first
    appearance: a name that is a column of the data is data, any other name a parameter.

    Raises
    ------
    UsageError
        The target is not a column, or the text has no parameter.
    """
    cols = set(columns)
    if parsed.target is not None and parsed.target not in cols:
        shown = ", ".join(list(columns)[:20]) + (", ..." if len(columns) > 20 else "")
        raise UsageError(
            f"the target '{parsed.target}' is not a column of the data; the columns are {shown}."
        )
    names = parsed.names()
    data = [n for n in names if n in cols]
    params = [n for n in names if n not in cols]
    if not params:
        raise UsageError(
            f"the {'model' if parsed.target else 'NLL'} has no parameters: every name in it "
            f"({', '.join(names) or 'none'}) is a column of the data."
        )
    return data, params


# -- helpers --------------------------------------------------------------------------------------
def _clean(text: str, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"the {what} is empty; {EXAMPLE}.")
    if len(text) > MAX_LENGTH:
        raise UsageError(f"the {what} is {len(text)} characters long; the limit is {MAX_LENGTH}.")
    control = re.search(r"[\x00-\x08\x0e-\x1f\x7f]", text)
    if control:
        raise UsageError(
            f"the {what} contains the control character {control.group()!r} at character {control.start() + 1}."
        )
    # Line breaks and tabs become spaces so a text from a file reads like one line; each is one
    # character, so positions in messages stay those of the text.
    return re.sub(r"[\r\n\t\f\v]", " ", text)


def _short(s: str, limit: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _parse(source: str, offset: int, what: str) -> tuple[ast.expr, str]:
    """``source`` (a part of the text starting at character ``offset``) as one ast expression,
    with the text its positions refer to (``source`` without leading spaces)."""
    stripped = source.lstrip()
    lead = len(source) - len(stripped)
    if not stripped.strip():
        where = "left of '~'" if offset == 0 and what == "model" else "right of '~'"
        raise UsageError(f"the {what} has nothing {where}; {EXAMPLE}.")
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1 if (exc.lineno or 1) == 1 else len(stripped)
        match = re.compile(r"\w+|\*\*|\S").search(stripped, min(col, len(stripped)))
        if match is None:
            raise UsageError(f"the {what} '{_short(stripped)}' ends too early (an unfinished expression).") from None
        token, at = match.group(), offset + lead + match.start() + 1
        if token in ("'", '"'):
            raise UsageError(f"the {what} has a quote at character {at}; strings are not allowed in a model.") from None
        raise UsageError(
            f"cannot read the {what} at '{token}' (character {at}): {exc.msg.rstrip('.')}."
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise UsageError(
            f"the {what} is nested too deeply to read; the limit is {MAX_DEPTH} levels."
        ) from None
    _check_depth(tree.body, stripped, what)
    return tree.body, stripped


def _check_depth(root: ast.expr, source: str, what: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH; chains of + - and of * / count as one level."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            segment = ast.get_source_segment(source, node) or ""
            raise UsageError(
                f"the {what} nests deeper than {MAX_DEPTH} levels at '{_short(segment)}'."
            )
        for child in ast.iter_child_nodes(node):
            same_chain = (
                isinstance(node, ast.BinOp) and child is node.left and isinstance(child, ast.BinOp)
                and _chain(node.op) is not None and _chain(node.op) == _chain(child.op)
            )
            stack.append((child, depth if same_chain else depth + 1))


def _chain(op: ast.operator) -> str | None:
    return "add" if isinstance(op, (ast.Add, ast.Sub)) else "mul" if isinstance(op, (ast.Mult, ast.Div)) else None


def _name(node: ast.Name, source: str) -> str:
    if node.id.startswith("__") and node.id.endswith("__"):
        raise UsageError(f"the name '{node.id}' is not allowed in a model (names may not start and end with '__').")
    return node.id


def _convert(node: ast.expr, source: str, what: str) -> E.Expr:
    """The ast ``node`` (found in ``source``) as an expression tree, checked against the grammar."""
    def segment() -> str:  # only on the way to an error: it costs a scan of the text
        return _short(ast.get_source_segment(source, node) or "")

    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise UsageError(f"'{segment()}' is not allowed in a model; write numbers, names and functions.")
        if isinstance(value, (str, bytes)):
            raise UsageError(f"the string {segment()} is not allowed in a model; write numbers, names and functions.")
        if isinstance(value, complex):
            raise UsageError(f"the imaginary number '{segment()}' is not allowed in a model.")
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise UsageError(f"the number '{segment()}' is too large for a model (beyond float64).")
        return E.Num(number)
    if isinstance(node, ast.Name):
        return E.Sym(_name(node, source))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return E.neg(_convert(node.operand, source, what))
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, source, what)
        raise _operator_error(node.op, segment())
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _operator_error(node.op, segment())
        # A chain a + b - c ... is a left-leaning tree: walk its spine in a loop, not by recursion.
        kind, rights, left = _chain(node.op), [], node
        while isinstance(left, ast.BinOp) and kind is not None and _chain(left.op) == kind:
            rights.append((left.op, left.right))
            left = left.left
        if kind is None:  # a power: right-associative, nesting counted by _check_depth
            return E.power(_convert(node.left, source, what), _convert(node.right, source, what))
        out = _convert(left, source, what)
        terms = [out]
        for op, right in reversed(rights):
            value = _convert(right, source, what)
            if isinstance(op, ast.Sub):
                value = E.neg(value)
            elif isinstance(op, ast.Div):
                value = E.power(value, E.Num(-1.0))
            terms.append(value)
        return E.add(*terms) if kind == "add" else E.mul(*terms)
    if isinstance(node, ast.Call):
        return _convert_call(node, source, what, segment)
    for kind, description in _REFUSED.items():
        if isinstance(node, kind):
            raise UsageError(f"{description} ('{segment()}') is not allowed in a model.")
    raise UsageError(f"'{segment()}' is not allowed in a model.")


def _convert_call(node: ast.Call, source: str, what: str, segment: Callable[[], str]) -> E.Expr:
    functions = ", ".join([*E.FUNCTIONS, *E.ALIASES])
    if not isinstance(node.func, ast.Name):
        callee = _short(ast.get_source_segment(source, node.func) or "")
        for kind, description in _REFUSED.items():
            if isinstance(node.func, kind):
                raise UsageError(f"{description} ('{callee}') is not allowed in a model.")
        raise UsageError(f"only the functions {functions} may be called; '{callee}' is not one.")
    name = node.func.id
    if name in DISTRIBUTIONS and name not in E.FUNCTIONS:
        raise UsageError(f"the distribution '{name}' may appear only right of '~', not inside an expression ('{segment()}').")
    func = E.ALIASES.get(name, name)
    if func not in E.FUNCTIONS:
        raise UsageError(f"unknown function '{name}' in '{segment()}'; the functions are {functions}.")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise UsageError(f"{name}() takes its argument without a name or '*': '{segment()}'.")
    if len(node.args) != E.FUNCTIONS[func]:
        raise UsageError(f"{name}() takes {E.FUNCTIONS[func]} argument; '{segment()}' gives {len(node.args)}.")
    return E.call(func, *(_convert(a, source, what) for a in node.args))


def _operator_error(op: ast.AST, segment: str) -> UsageError:
    symbol = _OTHER_OPERATORS.get(type(op), type(op).__name__)
    if symbol == "^":
        return UsageError(f"'^' in '{segment}' is not an operator of the model grammar; write a power as '**'.")
    return UsageError(f"the operator '{symbol}' in '{segment}' is not allowed in a model; the operators are + - * / **.")
