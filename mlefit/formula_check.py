"""What a formula may say, checked before formulaic evaluates any of it.

formulaic evaluates every factor of a formula (``np.log(x)``, ``C(region)``, ``{x**2}``) as Python
code with numpy in scope, so ``I(np.savetxt('f', x) or x)`` would write a file. Text a user passes
is parsed, never evaluated: before formulaic builds a design, every piece of the formula it would
evaluate is parsed here (:mod:`ast`, nothing is run) and held against this grammar:

- the Wilkinson operators ``~ + - * / : ** ( ) | 0 1``, column names (bare or in backticks), and
  Python expressions as factors (``{...}``, or a call such as ``np.log(x)``);
- in an expression: columns of the data, numbers, ``+ - * / **`` and unary ``-``, and calls of
  the functions in :data:`FUNCTIONS` and :data:`NUMPY` with the arguments each accepts
  (expressions, or constants of the kind named, for instance ``degree=3``, ``raw=True``,
  ``knots=[1, 2]``);
- strings only where a function needs one: a level (``Treatment('north')``,
  ``levels=['a', 'b']``), a column (``Q('my col')``), a spline option (``extrapolation='clip'``).
  A string holding a quote, a backslash, a brace or a control character is refused: formulaic
  pastes call texts into code of its own, where such a string could end the quotation (and a brace
  would end a ``{...}`` factor when the formula is read back from a model file).

Anything else (attributes other than ``np.<function>``, other calls, subscripts, lambdas,
comprehensions, comparisons, ``and``/``or``, conditional expressions, f-strings, names starting
with a double underscore, names that are not columns) is refused with one sentence naming it, as
are formulas longer than :data:`MAX_CHARS` characters, expressions nested deeper than
:data:`MAX_DEPTH` levels and formulas whose terms would multiply out to more than :data:`MAX_TERMS`
terms.

The module needs the standard library only; the caller hands it the pieces formulaic's parser
produced (a factor's Python text, the parse tree of the Wilkinson operators).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from dataclasses import dataclass

from .errors import DataError, MlefitError, ModelError, UsageError

#: The longest formula read, in characters.
MAX_CHARS = 2000
#: The deepest nesting of one expression (calls, operators and lists each add a level).
MAX_DEPTH = 20
#: The most terms a formula may expand to (``(a + b + c)**2`` is 6; ``a*b*c`` is 7).
MAX_TERMS = 1000
#: The largest power of terms (``(a + b)**3``) and the largest whole-number option (``degree``, ``df``).
MAX_COUNT = 100


@dataclass(frozen=True)
class Source:
    """Where a formula came from, for the messages: its label and the error its refusals raise."""

    label: str
    of: str
    error: type[MlefitError]


#: ``--formula`` (or ``formula=``) given to a fit.
FIT = Source("--formula", "in --formula", UsageError)
#: The formula of a saved design (a model file), rebuilt for new data.
MODEL = Source("the model's formula", "of the model's formula", ModelError)


# -- the allow-list --------------------------------------------------------------------------------
#
# A signature is (positional kinds, {keyword: kind}). Kinds: "expr" an expression; "count" a whole
# number 0..MAX_COUNT; "number" a number (or None); "bool" True or False; "numbers" a list of
# numbers; "level" a string or number; "levels" a list of those; "contrasts" a contrast (below);
# "column" a column's name as a string; "extrapolation" and "constraints" the strings listed.

_EXTRAPOLATION = ("raise", "clip", "na", "zero", "extend")
_SCALE = (("expr", "bool", "bool", "number"), {"center": "bool", "scale": "bool", "ddof": "number"})
_CUBIC = (
    ("expr", "count", "numbers", "number", "number", "constraints"),
    {"df": "count", "knots": "numbers", "lower_bound": "number", "upper_bound": "number",
     "constraints": "constraints", "extrapolation": "extrapolation"},
)
_ONE = (("expr",), {})

#: formulaic's functions a formula may call, by name.
FUNCTIONS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "I": _ONE,
    "C": (("expr", "contrasts"), {"contrasts": "contrasts", "levels": "levels", "spans_intercept": "bool"}),
    "poly": (("expr", "count", "bool"), {"degree": "count", "raw": "bool"}),
    "center": _ONE,
    "scale": _SCALE,
    "standardize": (_SCALE[0], {"center": "bool", "rescale": "bool", "ddof": "number"}),
    "bs": (
        ("expr", "count", "numbers", "count", "bool", "number", "number", "extrapolation"),
        {"df": "count", "knots": "numbers", "degree": "count", "include_intercept": "bool",
         "lower_bound": "number", "upper_bound": "number", "extrapolation": "extrapolation"},
    ),
    "cr": _CUBIC,
    "cs": _CUBIC,
    "cc": _CUBIC,
    "Q": (("column",), {}),
    "log": _ONE,
    "log2": _ONE,
    "log10": _ONE,
    "exp": _ONE,
    "exp2": _ONE,
}

#: numpy functions a formula may call as ``np.<name>``, with their number of (positional) arguments.
NUMPY: dict[str, int] = {
    "log": 1, "log1p": 1, "log2": 1, "log10": 1, "exp": 1, "expm1": 1, "sqrt": 1, "square": 1,
    "abs": 1, "sin": 1, "cos": 1, "tanh": 1, "power": 2, "clip": 3,
}

#: The contrasts ``C(x, ...)`` accepts as its second argument, called (``Treatment('b')``) or not (``Sum``).
CONTRASTS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "Treatment": (("level",), {"reference": "level"}),
    "Sum": ((), {}),
    "Helmert": (("bool", "bool"), {"reverse": "bool", "scale": "bool"}),
    "Diff": (("bool",), {"backward": "bool"}),
    "Poly": (("numbers",), {"scores": "numbers"}),
    "contr.treatment": (("level",), {"base": "level"}),
    "contr.SAS": (("level",), {"base": "level"}),
    "contr.sum": ((), {}),
    "contr.helmert": (("bool", "bool"), {"reverse": "bool", "scale": "bool"}),
    "contr.diff": (("bool",), {"backward": "bool"}),
    "contr.poly": (("numbers",), {"scores": "numbers"}),
}

ALLOWED_FUNCTIONS = ", ".join([*FUNCTIONS, *(f"np.{name}" for name in NUMPY)])

_KIND_TEXT = {
    "count": f"a whole number from 0 to {MAX_COUNT}",
    "number": "a number",
    "bool": "True or False",
    "numbers": "a list of numbers",
    "level": "a level (a string or a number)",
    "levels": "a list of levels",
    "contrasts": f"a contrast ({', '.join(CONTRASTS)})",
    "column": "a column's name in quotes",
    "extrapolation": "one of " + ", ".join(f"'{e}'" for e in _EXTRAPOLATION),
    "constraints": "'center'",
}

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_REFUSED_OPERATORS = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.Not: "not", ast.Invert: "~",
}
_WHAT = {
    ast.Subscript: "a subscript", ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator",
    ast.JoinedStr: "an f-string", ast.FormattedValue: "an f-string", ast.NamedExpr: "an assignment",
    ast.BoolOp: "'and'/'or'", ast.IfExp: "a conditional expression", ast.Compare: "a comparison",
    ast.Dict: "a dict", ast.Set: "a set", ast.Starred: "a starred argument", ast.Await: "'await'",
    ast.Yield: "'yield'", ast.YieldFrom: "'yield'", ast.Slice: "a slice",
}

# formulaic's own split of a factor's text at backtick-quoted names (formulaic.utils.code), so the
# names found here are the ones formulaic substitutes before it evaluates
_BACKTICKS = re.compile(r"(\\\"|\"(?:\\\"|[^\"])*\"|\\'|'(?:\\'|[^'])*'|`)")


# -- the checks ------------------------------------------------------------------------------------


def check_text(text: str, source: Source = FIT) -> None:
    """Refuse a formula that is not a string or is longer than :data:`MAX_CHARS` characters."""
    if not isinstance(text, str):
        raise source.error(f"{source.label} must be text, not {type(text).__name__}.")
    if len(text) > MAX_CHARS:
        raise source.error(f"{source.label} has {len(text)} characters; at most {MAX_CHARS} are read.")


def check_column(name: str, columns: Collection[str], source: Source = FIT) -> None:
    """A factor that is a bare name (formulaic looks it up, never evaluates it) must be a column."""
    if name not in columns:
        raise DataError(f"column '{name}' {source.of} not found; available: {', '.join(map(str, columns))}.")


def check_expression(text: str, columns: Collection[str], source: Source = FIT) -> None:
    """Refuse a factor's Python text (``np.log(x)``, ``x**2``, ``C(r, Treatment('a'))``) unless every
    part of it is in the grammar (see the module docstring); names must be ``columns``.

    Raises ``source.error`` (UsageError for ``--formula``, ModelError for a model's formula) naming
    the offending token, or DataError for a name that is not a column.
    """
    _Expression(text, columns, source).check()


def term_bound(tree, source: Source = FIT) -> None:
    """Refuse a formula whose terms would multiply out to more than :data:`MAX_TERMS` terms.

    ``tree`` is formulaic's parse tree of the Wilkinson operators (``DefaultFormulaParser().get_ast``):
    nodes with ``operator.symbol`` and ``args``, leaves that are tokens. Each node's count of terms is
    bounded from its operands' (``a + b``: a + b; ``a:b``: ab; ``a*b``: a + b + ab; ``a**n``: a^n) in a
    walk without recursion, so no formula is expanded to find out that it is too big.
    """
    bound: dict[int, int] = {}
    stack = [(tree, False)]
    while stack:
        node, ready = stack.pop()
        args = list(getattr(node, "args", None) or ())
        if not hasattr(node, "operator"):
            bound[id(node)] = 1
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((arg, False) for arg in args)
            continue
        sizes = [bound[id(arg)] for arg in args]
        symbol = node.operator.symbol
        if len(sizes) != 2:
            n = sum(sizes) or 1
        elif symbol == ":":
            n = sizes[0] * sizes[1]
        elif symbol == "*":
            n = sizes[0] + sizes[1] + sizes[0] * sizes[1]
        elif symbol in ("**", "^"):
            power = str(getattr(args[1], "token", ""))
            k = int(power) if power.isdigit() else 1
            if k > MAX_COUNT:
                raise source.error(f"{source.label}: the power '{symbol}{power}' is too large; at most {MAX_COUNT}.")
            n = sizes[0] ** k if sizes[0] <= MAX_TERMS else MAX_TERMS + 1
        elif symbol == "-":
            n = sizes[0]
        else:  # + ~ | / in
            n = sizes[0] + sizes[1]
        if n > MAX_TERMS:
            raise source.error(f"{source.label} expands to more than {MAX_TERMS} terms.")
        bound[id(node)] = n


# -- one expression --------------------------------------------------------------------------------


class _Expression:
    def __init__(self, text: str, columns: Collection[str], source: Source) -> None:
        self.text = text
        self.columns = columns
        self.source = source
        self.backticked: dict[str, str] = {}  # placeholder name -> the backtick-quoted column name

    def refuse(self, message: str) -> MlefitError:
        return self.source.error(f"{self.source.label}: {message}.")

    def segment(self, node: ast.AST) -> str:
        text = ast.get_source_segment(self.parsed_text, node) or ast.unparse(node)
        for placeholder, name in self.backticked.items():
            text = text.replace(placeholder, f"`{name}`")
        return " ".join(text.split())

    def quoted(self, node: ast.AST) -> str:
        """The segment in quotes, unless it is a string written with its own."""
        text = self.segment(node)
        return text if isinstance(node, ast.Constant) and isinstance(node.value, str) else f"'{text}'"

    def check(self) -> None:
        text = self.unquote(self.text)
        self.parsed_text = text
        try:
            tree = ast.parse(text, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise self.refuse(f"cannot read '{self.text}' (not an expression the formula grammar allows)") from None
        # a call of anything not allowed is named first, wherever it sits ('np.savetxt' in
        # "np.savetxt('f', x) or x" rather than the 'or' around it)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self.callee(node)
        self.expr(tree.body, 1)

    def unquote(self, text: str) -> str:
        """Backtick-quoted names replaced by placeholders, split the way formulaic splits them."""
        parts = _BACKTICKS.split(text)
        out, i = [], 0
        while i < len(parts):
            if parts[i] != "`":
                out.append(parts[i])
                i += 1
                continue
            try:
                close = parts.index("`", i + 1)
            except ValueError:
                raise self.refuse(f"'{self.text}' has a backtick that is not closed") from None
            name = "".join(parts[i + 1 : close])
            placeholder = f"_quoted_{len(self.backticked)}_"
            while placeholder in text:
                placeholder += "_"
            self.backticked[placeholder] = name
            out.append(f" {placeholder} ")
            i = close + 1
        return "".join(out)

    # value positions: what a transform or an operator is applied to
    def expr(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.refuse(f"'{self.segment(node)}' nests deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Name):
            self.name(node)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                raise self.refuse(
                    f"the string {self.segment(node)} is not allowed here; strings only name a level "
                    "(C(x, Treatment('a')), levels=[...]), a column (Q('name')) or a spline option"
                )
            if not _is_number(node.value):
                raise self.refuse(f"'{self.segment(node)}' is not allowed here; only numbers and columns are")
        elif isinstance(node, ast.BinOp):
            symbol = _OPERATORS.get(type(node.op))
            if symbol is None:
                raise self.refuse(
                    f"'{_REFUSED_OPERATORS.get(type(node.op), type(node.op).__name__)}' in "
                    f"'{self.segment(node)}' is not an allowed operator; allowed: + - * / **"
                )
            if symbol == "**" and _constant(node.left) and _constant(node.right):
                # numbers only: Python computes 9**9**9 exactly, for as long as it takes
                base, power = _number(node.left), _number(node.right)
                if base is None or power is None or abs(power) > MAX_COUNT:
                    raise self.refuse(f"'{self.segment(node)}' is too large a power of numbers; write the number")
            self.expr(node.left, depth + 1)
            self.expr(node.right, depth + 1)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise self.refuse(
                    f"'{_REFUSED_OPERATORS.get(type(node.op), '?')}' in '{self.segment(node)}' is not an "
                    "allowed operator; allowed: + - * / **"
                )
            self.expr(node.operand, depth + 1)
        elif isinstance(node, ast.Call):
            name = self.callee(node)
            if name in CONTRASTS:
                raise self.refuse(f"'{name}' is a contrast: it may only be the second argument of C(...)")
            if name in FUNCTIONS:
                self.arguments(node, name, FUNCTIONS[name], depth)
            else:  # np.<function>, as callee() allows nothing else
                arity = NUMPY[name[3:]]
                self.arguments(node, name, (("expr",) * arity, {}), depth)
                if len(node.args) != arity:
                    raise self.refuse(f"'{self.segment(node)}': {name} takes {arity} argument(s)")
        elif isinstance(node, ast.Attribute):
            raise self.refuse(f"'{self.segment(node)}' is not allowed; a dot may only call np.<function>(...)")
        elif isinstance(node, (ast.List, ast.Tuple)):
            raise self.refuse(f"the list '{self.segment(node)}' is not allowed here")
        else:
            what = _WHAT.get(type(node), "this expression")
            raise self.refuse(f"'{self.segment(node)}' is not allowed: {what} is not part of the formula grammar")

    def name(self, node: ast.Name) -> None:
        name = self.backticked.get(node.id, node.id)
        if name.startswith("__"):
            raise self.refuse(f"the name '{name}' is not allowed (names starting with a double underscore are refused)")
        if name not in self.columns and (name in FUNCTIONS or name in ("np", "contr")):
            raise self.refuse(f"'{name}' is a function, not a column; call it, as in {name}(x)")
        check_column(name, self.columns, self.source)

    def callee(self, node: ast.Call) -> str:
        """The called function's dotted name (``np.log``); anything else called is refused."""
        func = node.func
        name = None
        if isinstance(func, ast.Name) and func.id not in self.backticked:
            name = func.id
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("np", "contr"):
            name = f"{func.value.id}.{func.attr}"
        numpy = name is not None and name.startswith("np.") and name[3:] in NUMPY
        if name in FUNCTIONS or name in CONTRASTS or numpy:
            return name
        shown = name or self.segment(func)
        raise self.refuse(f"'{shown}' is not an allowed function; allowed: {ALLOWED_FUNCTIONS}")

    def arguments(self, node: ast.Call, name: str, signature, depth: int) -> None:
        positional, keywords = signature
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                what = "a starred argument is not part of the formula grammar"
                raise self.refuse(f"'{self.segment(arg)}' is not allowed: {what}")
        if len(node.args) > len(positional):
            raise self.refuse(
                f"'{self.segment(node)}' gives {name} {len(node.args)} arguments; it takes at most {len(positional)}"
            )
        for arg, kind in zip(node.args, positional):
            self.argument(arg, kind, name, depth)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.refuse(f"'**{self.segment(keyword.value)}' is not allowed in {name}(...)")
            if keyword.arg not in keywords:
                options = ", ".join(keywords) or "none"
                raise self.refuse(f"'{keyword.arg}=' is not an option of {name}; its options: {options}")
            self.argument(keyword.value, keywords[keyword.arg], name, depth)

    def argument(self, node: ast.AST, kind: str, name: str, depth: int) -> None:
        if kind == "expr":
            self.expr(node, depth + 1)
            return
        if kind == "contrasts":
            self.contrasts(node, depth)
            return
        ok = False
        if kind == "count":
            value = _number(node)
            ok = isinstance(value, int) and 0 <= value <= MAX_COUNT
        elif kind == "number":
            ok = _number(node) is not None or (isinstance(node, ast.Constant) and node.value is None)
        elif kind == "bool":
            ok = isinstance(node, ast.Constant) and isinstance(node.value, bool)
        elif kind == "numbers":
            ok = isinstance(node, (ast.List, ast.Tuple)) and all(_number(e) is not None for e in node.elts)
        elif kind == "level":
            ok = self.level(node)
        elif kind == "levels":
            ok = isinstance(node, (ast.List, ast.Tuple)) and all(self.level(e) for e in node.elts)
        elif kind == "column":
            ok = self.string(node)
            if ok:
                check_column(node.value, self.columns, self.source)
        elif kind == "extrapolation":
            ok = isinstance(node, ast.Constant) and node.value in _EXTRAPOLATION
        elif kind == "constraints":
            ok = isinstance(node, ast.Constant) and node.value in ("center", None)
        if not ok:
            raise self.refuse(f"{self.quoted(node)} is not allowed in {name}(...); it must be {_KIND_TEXT[kind]}")

    def contrasts(self, node: ast.AST, depth: int) -> None:
        if isinstance(node, ast.Call):
            name = self.callee(node)
            if name in CONTRASTS:
                self.arguments(node, name, CONTRASTS[name], depth)
                return
        else:
            name = ast.unparse(node)
            if name in CONTRASTS:
                return
        raise self.refuse(f"{self.quoted(node)} is not allowed in C(...); it must be {_KIND_TEXT['contrasts']}")

    def level(self, node: ast.AST) -> bool:
        return _number(node) is not None or self.string(node)

    def string(self, node: ast.AST) -> bool:
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            return False
        if any(c in node.value for c in "'\"\\`{}") or not node.value.isprintable():
            raise self.refuse(
                f"the string {self.segment(node)} holds a quote, a backslash, a brace or a control character, "
                "which a formula cannot carry"
            )
        return True


def dotted_name(node) -> str | None:
    """``a.b.c`` for a name or an attribute chain of names, else None (what a formula calls)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(node: ast.AST) -> int | float | None:
    """The value of a number written as a constant, possibly signed; else None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and _is_number(node.value):
        return sign * node.value
    return None


def _constant(node: ast.AST) -> bool:
    """Whether an expression holds numbers only (no column)."""
    return not any(isinstance(n, ast.Name) for n in ast.walk(node))


# -- reading a checked expression ---------------------------------------------------------------------


def parse_expression(text: str) -> tuple[ast.Expression, dict[str, str]]:
    """A factor's Python text that has passed :func:`check_expression`, parsed: the tree, in which
    each backtick-quoted name is a placeholder name, and ``{placeholder: name}``."""
    expression = _Expression(text, (), FIT)
    tree = ast.parse(expression.unquote(text), mode="eval")
    return tree, expression.backticked


def expression_columns(text: str, columns: Collection[str]) -> set[str]:
    """The ``columns`` a checked factor's Python text names: bare, in backticks or in ``Q('...')``."""
    tree, backticked = parse_expression(text)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            name = backticked.get(node.id, node.id)
            if name in columns:
                found.add(name)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Q" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            and node.args[0].value in columns
        ):
            found.add(node.args[0].value)
    return found
