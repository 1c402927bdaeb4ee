"""Numeric and LaTeX-expression answers: extraction, normalisation and equivalence (GSM-Hard, MATH).

Contract:

* ``last_boxed(text)`` — the content of the last ``\\boxed{…}`` / ``\\fbox{…}`` (nested braces kept), or of a
  brace-less ``\\boxed 5``; None when there is none.
* ``parse_answer(text)`` — an answer as a :class:`Value`: a scalar sympy expression, or an ordered
  sequence/interval/union, or an unordered set/bare list of them. None when the text is not mathematics.
* ``equivalent(answer, gold)`` — True when the model's answer equals the gold answer (rules below);
  ``number_equivalent(answer, target)`` does the same against a plain number (GSM-Hard's ``target``).
  Neither raises on any string.

Normalisation: dollars (``$…$``, ``\\$12``), ``\\(…\\)``, ``\\left``/``\\right``, spacing macros (``\\!``,
``\\,``, ``\\;``, ``~``), ``\\dfrac``/``\\tfrac`` → ``\\frac``, degrees (``^\\circ``, ``°``), percent signs,
``{,}`` and ``1,234`` thousands separators, ``\\text{…}`` wrappers, trailing unit words (``10 inches``),
leading ``x =`` / ``AB =`` and ``the answer is`` prefixes, a final full stop; ``4\\frac{1}{2}`` is the mixed
number 4½; two numbers side by side (``1 234``) are not read as a product.

Equivalence: scalars are compared by value. An exact answer must equal the gold to within 1e-9 relative
(float noise of stored floats; two exact rationals must be equal). A decimal answer with d places
passes when it is the gold correctly rounded to d places, and, for d < 2, also within the original
runner's 1e-3 relative tolerance (7/3: 2.33 passes, 2.3 does not; pi: 3.14 passes, 3.1 does not). Expressions with
variables are compared at three fixed points. Tuples and intervals compare item by item with the same
brackets, ``\\{…\\}`` sets and bare lists (``-2, 1``) as multisets. Text that is not mathematics falls back
to a case-, space- and brace-insensitive string comparison.

Safety: model text is never evaluated. A small recursive-descent parser turns the normalised LaTeX into
sympy objects directly; input is capped at ``MAX_CHARS``, nesting at ``MAX_DEPTH``, and powers, factorials
and binomials whose exact value would be huge are refused, so no answer can stall the verifier.
Not handled: ``\\pm``, matrices, functions other than roots, inequalities and equations as answers,
products of variables written without an operator (``xy``; ``x y`` and ``x*y`` are read); these fall back
to the string comparison.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sympy takes about a second to import: the functions that need it import it on first use
    import sympy

MAX_CHARS = 400
MAX_DEPTH = 40
MAX_BITS = 20_000  # the largest exact integer a power may produce (~6,000 digits)
MAX_FACTORIAL = 1_000
REL_TOL_EXACT = 1e-9
REL_TOL_DECIMAL = 1e-3  # the original runner's "< 1e-3 relative difference"
MIN_ROUNDED_PLACES = 2  # 2.33 for 7/3 passes as a correct rounding; 2.3 must meet REL_TOL_DECIMAL
_PRECISION = 40
_SAMPLE_POINTS = (0.7317, 1.9134, -2.4071)

# Exceptions that sympy/mpmath raise on degenerate but parseable input (0**-1, nan comparisons, overflow).
# (sympy's SympifyError is a ValueError.)
_MATH_ERRORS = (ArithmeticError, TypeError, ValueError, AttributeError, RecursionError, MemoryError)


class _ParseError(Exception):
    """The text is not an expression this parser reads (always caught inside this module)."""


@dataclass(frozen=True)
class Scalar:
    expr: sympy.Expr
    decimals: int | None  # the most decimal places written in the text (None when it has no decimal)


@dataclass(frozen=True)
class Group:
    kind: str  # "ordered" (tuple or interval: brackets matter) | "set" (unordered)
    opening: str
    closing: str
    items: tuple


Value = Scalar | Group


# ---------------------------------------------------------------------------------------------- boxed

def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed``/``\\fbox`` in ``text``; None if there is none or it is unclosed."""
    if not isinstance(text, str):
        return None
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    pos = start + (6 if text.startswith("\\boxed", start) else 5)
    rest = text[pos:]
    if not rest.lstrip().startswith("{"):
        # \boxed 5 or \boxed5: the argument runs to the next $ or the end of the line
        match = re.match(r"\s*([^$\n]+)", rest)
        return match.group(1).strip() if match else None
    pos += len(rest) - len(rest.lstrip())
    depth = 0
    for i in range(pos, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[pos + 1:i]
    return None


# ---------------------------------------------------------------------------------------------- cleaning

_TEXT_MACROS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
# Words must be whitespace-separated so a letter run splits one way only (no exponential backtracking).
_UNIT_TAIL = re.compile(r"^(.*?(?:[\d}).]|\\[A-Za-z]+))\s+[A-Za-z]{2,}\.?(?:\s+[A-Za-z]{2,}\.?)*\s*"
                        r"(?:\^\{?[23]\}?)?$")
_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?(?:answer|result|value)\s*(?:is|:|=)\s*", re.I)
_LHS = re.compile(r"^[A-Za-z][A-Za-z0-9_{}\\]{0,12}\s*=\s*(?=[^=]+$)")
_MIXED = re.compile(r"(?<![\d.}^_])(\d+)\s*\\frac(?:\{(\d+)\}\{(\d+)\}|(\d)(\d))")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")


def clean(text: str) -> str | None:
    """Normalised LaTeX of an answer (see the module docstring), or None when it is empty or too long."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > 4 * MAX_CHARS:
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        text = boxed
    for old, new in (("\\left", ""), ("\\right", ""), ("\\displaystyle", ""), ("\\dfrac", "\\frac"),
                     ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"), ("\\!", ""), ("\\,", " "), ("\\;", " "),
                     ("\\:", " "), ("\\ ", " "), ("~", " "), ("\\$", ""), ("$", ""), ("\\(", ""), ("\\)", ""),
                     ("\\[", ""), ("\\]", ""), ("{,}", ""), ("\\%", ""), ("%", ""), ("°", ""),
                     ("^{\\circ}", ""), ("^\\circ", ""), ("\\circ", ""), ("\\degree", ""), ("\\cdot", "*"),
                     ("\\times", "*"), ("\\div", "/"), ("π", "\\pi"), ("√", "\\sqrt"), ("−", "-"),
                     ("**", "^")):
        text = text.replace(old, new)
    for _ in range(3):  # nested \text{\textbf{…}} unwraps from the inside out
        text = _TEXT_MACROS.sub(lambda m: " " + m.group(1) + " ", text)
    text = " ".join(text.split()).strip()
    text = _MIXED.sub(_mixed, text)
    text = _PREFIX.sub("", text)
    text = _LHS.sub("", text)
    text = text.rstrip(".").strip()
    tail = _UNIT_TAIL.match(text)
    if tail and not re.search(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", "", tail.group(1))):
        text = tail.group(1).strip()
    if not text or len(text) > MAX_CHARS:
        return None
    return text


def _mixed(match: re.Match) -> str:
    """``4\\frac{1}{2}`` is the mixed number 4½, not 4·½ (only for a proper fraction of integers)."""
    whole, num, den = match.group(1), match.group(2) or match.group(4), match.group(3) or match.group(5)
    if int(num) < int(den):
        return f"({whole}+\\frac{{{num}}}{{{den}}})"
    return match.group(0)


def text_key(text: str) -> str:
    """The fallback key for answers that are not mathematics: no case, spaces, braces or wrappers."""
    cleaned = clean(text) or (text or "").strip()
    cleaned = re.sub(r"[\s{}\"'`\\]", "", cleaned.lower())
    option = re.fullmatch(r"\(([a-z])\)", cleaned)  # "(C)" and "C" name the same option
    return option.group(1) if option else cleaned


# ---------------------------------------------------------------------------------------------- parser

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<cmd>\\[A-Za-z]+|\\[{}|])"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<op>[-+*/^(){}\[\]!,]))")
_FUNCTIONS = {"sqrt"}
_CONSTANTS = {"\\pi": "pi", "pi": "pi", "\\infty": "oo", "inf": "oo", "infty": "oo"}  # sympy attribute names


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise _ParseError(f"unexpected {text[pos:pos + 10]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "word":  # a known name or a one-letter variable; "no" must not equal "on" as n*o
            if value in _FUNCTIONS or value in _CONSTANTS:
                out.append(("word", value))
            elif len(value) == 1:
                out.append(("var", value))
            else:
                raise _ParseError(f"a word: {value!r}")
        else:
            out.append((kind, value))
        pos = match.end()
    return out


class _Parser:
    """expr := term (('+'|'-') term)*;  term := unary (('*'|'/'|implicit) unary)*;
    unary := ('-'|'+') unary | power;  power := postfix ('^' unary)?;  postfix := atom '!'*"""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0
        self.decimals: int | None = None

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise _ParseError(f"expected {value or 'more'}")
        self.pos += 1
        return token

    def done(self) -> bool:
        return self.pos == len(self.tokens)

    def expr(self) -> sympy.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _ParseError("nested too deeply")
        value = self.term()
        while (token := self.peek()) is not None and token[1] in "+-":
            self.take()
            other = self.term()
            value = value + other if token[1] == "+" else value - other
        self.depth -= 1
        return value

    def term(self) -> sympy.Expr:
        value = self.unary()
        while (token := self.peek()) is not None:
            if token[1] in ("*", "/"):
                self.take()
                other = self.unary()
                if token[1] == "/":
                    if other == 0:
                        raise _ParseError("division by zero")
                    value = value / other
                else:
                    value = value * other
            elif token[0] == "num" and self.tokens[self.pos - 1][0] == "num":
                raise _ParseError("two numbers side by side")  # "1 234" is not 234
            elif token[0] in ("num", "var", "word") or token[1] in ("(", "{", "\\frac", "\\sqrt", "\\pi",
                                                                      "\\binom", "\\infty"):
                value = value * self.unary()  # implicit multiplication: 2\pi, 3\sqrt{2}, 2x
            else:
                break
        return value

    def unary(self) -> sympy.Expr:
        token = self.peek()
        if token is not None and token[1] in "+-" and token[0] == "op":
            self.take()
            value = self.unary()
            return -value if token[1] == "-" else value
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.postfix()
        token = self.peek()
        if token is not None and token[1] == "^":
            self.take()
            # a sign or a whole digit run: models write 2^10 (from 2**10), MATH writes 2^{10}
            following = self.peek()
            exponent = (self.unary() if following and following[0] in ("op", "num") and following[1] != "{"
                        else self.argument())
            return _safe_pow(base, exponent)
        return base

    def postfix(self) -> sympy.Expr:
        import sympy
        value = self.atom()
        while (token := self.peek()) is not None and token[1] == "!":
            self.take()
            if not (value.is_Integer and 0 <= int(value) <= MAX_FACTORIAL):
                raise _ParseError("factorial of a non-integer or huge number")
            value = sympy.factorial(value)
        return value

    def argument(self) -> sympy.Expr:
        """A LaTeX argument: a braced group, or one token (``\\frac12``, ``\\sqrt2``, ``x^2``)."""
        token = self.peek()
        if token is None:
            raise _ParseError("missing argument")
        if token[1] == "{":
            self.take()
            value = self.expr()
            self.take("}")
            return value
        if token[0] == "num" and len(token[1]) > 1 and token[1].isdigit():
            # \frac123 reads as \frac{1}{2}3 in TeX: split the digit run
            self.tokens[self.pos] = ("num", token[1][0])
            self.tokens.insert(self.pos + 1, ("num", token[1][1:]))
        return self.atom()

    def atom(self) -> sympy.Expr:
        import sympy
        kind, value = self.take()
        if kind == "num":
            return self.number(value)
        if kind == "var":
            return sympy.Symbol(value)
        if value in _CONSTANTS:
            return getattr(sympy, _CONSTANTS[value])
        if value in ("(", "{", "["):
            inner = self.expr()
            self.take({"(": ")", "{": "}", "[": "]"}[value])
            return inner
        if value == "\\frac":
            num = self.argument()
            den = self.argument()
            if den == 0:
                raise _ParseError("division by zero")
            return num / den
        if value == "\\binom":
            n, k = self.argument(), self.argument()
            if not (n.is_Integer and k.is_Integer and 0 <= int(n) <= 10 * MAX_FACTORIAL):
                raise _ParseError("binomial of non-integers or huge numbers")
            return sympy.binomial(n, k)
        if value in ("\\sqrt", "sqrt"):
            index = sympy.Integer(2)
            if self.peek() and self.peek()[1] == "[":
                self.take()
                index = self.expr()
                self.take("]")
                if not (index.is_Integer and 2 <= int(index) <= 100):
                    raise _ParseError("odd root index")
            radicand = self.argument()
            return _safe_pow(radicand, 1 / index)
        raise _ParseError(f"unexpected {value!r}")

    def number(self, text: str) -> sympy.Expr:
        import sympy
        mantissa, _, exp = text.lower().partition("e")
        if "." in mantissa:
            places = len(mantissa.split(".")[1])
            self.decimals = max(self.decimals or 0, places) if places else self.decimals
        value = sympy.Rational(mantissa) if mantissa not in (".", "") else sympy.Integer(0)
        if exp:
            if abs(int(exp)) > 300:
                raise _ParseError("exponent out of range")
            value = value * sympy.Integer(10) ** int(exp)
        return value


def _safe_pow(base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
    """``base ** exponent`` unless the exact result would be a huge rational (a stalled verifier)."""
    import sympy
    if exponent.is_Rational:
        numerator = abs(int(exponent.p))
        if numerator > 10_000:
            raise _ParseError("exponent too large")
        if base.is_Rational and base != 0:
            bits = max(abs(int(base.p)).bit_length(), abs(int(base.q)).bit_length())
            if bits * numerator > MAX_BITS:
                raise _ParseError("power too large")
        if base == 0 and exponent.is_negative:
            raise _ParseError("division by zero")
    elif exponent.has(sympy.Symbol) is False and exponent.is_number:
        try:
            magnitude = abs(float(sympy.N(exponent, 15)))
        except _MATH_ERRORS:
            raise _ParseError("unreadable exponent") from None
        if magnitude > 10_000:
            raise _ParseError("exponent too large")
    return sympy.Pow(base, exponent)


def _scalar(text: str) -> Scalar:
    import sympy
    parser = _Parser(text)
    if parser.done():
        raise _ParseError("empty")
    expr = parser.expr()
    if not parser.done():
        raise _ParseError("trailing text")
    if expr.has(sympy.zoo, sympy.nan):
        raise _ParseError("undefined value")
    return Scalar(expr, parser.decimals)


# ---------------------------------------------------------------------------------------------- values

def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            return False
    return depth == 0


def _parse(text: str) -> Value:
    if "\\cup" in text:
        return Group("ordered", "", "", tuple(_parse(part.strip()) for part in text.split("\\cup")))
    if text.startswith("\\{") and text.endswith("\\}"):
        items = [i for i in _split_top(text[2:-2]) if i]
        return Group("set", "{", "}", tuple(_scalar(i) for i in items))
    if len(text) >= 2 and text[0] in "([" and text[-1] in ")]" and _balanced(text[1:-1]):
        items = _split_top(text[1:-1])
        if len(items) >= 2:
            return Group("ordered", text[0], text[-1], tuple(_scalar(i) for i in items))
    items = _split_top(text)
    if len(items) >= 2:
        return Group("set", "", "", tuple(_scalar(i) for i in items))
    return _scalar(text)


def parse_answer(text: str, thousands: bool = True) -> Value | None:
    """The answer as a Value, or None when it is not mathematics this module reads. With ``thousands``,
    ``1,234`` is one number (the caller turns it off when the gold answer is a list)."""
    cleaned = clean(text)
    if cleaned is None:
        return None
    if thousands:
        cleaned = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), cleaned)
    try:
        return _parse(cleaned)
    except (_ParseError, *_MATH_ERRORS):
        return None


# ---------------------------------------------------------------------------------------------- comparison

def _numeric(expr: sympy.Expr) -> complex | None:
    import sympy
    value = sympy.N(expr, _PRECISION)
    if value.has(sympy.Symbol) or not value.is_number:
        return None
    real, imag = value.as_real_imag()
    return complex(float(real), float(imag))


def _close(got: complex, want: complex, rel: float) -> bool:
    return abs(got - want) <= rel * abs(want) + 1e-12


def scalars_equal(got: Scalar, want: Scalar) -> bool:
    """Same value (see the module docstring for the tolerances); never raises."""
    try:
        return _scalars_equal(got, want)
    except _MATH_ERRORS:
        return False


def _scalars_equal(got: Scalar, want: Scalar) -> bool:
    import sympy
    if got.expr == want.expr:
        return True
    symbols = got.expr.free_symbols | want.expr.free_symbols
    if symbols:
        if got.expr.free_symbols != want.expr.free_symbols:
            return False
        ordered = sorted(symbols, key=lambda s: s.name)
        for shift, point in enumerate(_SAMPLE_POINTS):
            subs = {s: point + 0.37 * i + shift for i, s in enumerate(ordered)}
            a, b = _numeric(got.expr.subs(subs)), _numeric(want.expr.subs(subs))
            if a is None or b is None or not _close(a, b, REL_TOL_EXACT):
                return False
        return True
    if got.expr.has(sympy.oo, -sympy.oo) or want.expr.has(sympy.oo, -sympy.oo):
        return False  # equal infinities were caught by the structural test above
    if got.expr.is_Rational and want.expr.is_Rational and got.decimals is None and want.decimals is None:
        return False  # two different exact rationals: no tolerance (a big integer off by one is wrong)
    a, b = _numeric(got.expr), _numeric(want.expr)
    if a is None or b is None:
        return False
    if _close(a, b, REL_TOL_EXACT):
        return True
    places = [p for p in (got.decimals, want.decimals) if p]
    if not places or a.imag or b.imag:
        return False
    # a decimal written to d places: the other value correctly rounded to d places; one or no decimal
    # place must also be within the runner's relative tolerance (3.1 is not an answer for pi)
    d = min(places)
    diff = abs(a.real - b.real)
    rounded = diff <= 0.5 * 10 ** -d * (1 + 1e-9)
    return rounded and (d >= MIN_ROUNDED_PLACES or diff <= REL_TOL_DECIMAL * abs(b.real) * (1 + 1e-9))


def values_equal(got: Value, want: Value) -> bool:
    if isinstance(got, Scalar) and isinstance(want, Scalar):
        return scalars_equal(got, want)
    if isinstance(got, Scalar) or isinstance(want, Scalar) or len(got.items) != len(want.items):
        return False
    if got.kind != want.kind:
        # a bare list "1, 2" stands for the tuple "(1, 2)", in order; never for an interval or a set
        bare, ordered = (got, want) if got.kind == "set" else (want, got)
        if bare.opening or (ordered.opening, ordered.closing) != ("(", ")"):
            return False
        return all(values_equal(g, w) for g, w in zip(got.items, want.items))
    if want.kind == "set":
        remaining = list(got.items)
        for item in want.items:
            match = next((i for i, g in enumerate(remaining) if values_equal(g, item)), None)
            if match is None:
                return False
            remaining.pop(match)
        return True
    if (got.opening, got.closing) != (want.opening, want.closing):
        return False
    return all(values_equal(g, w) for g, w in zip(got.items, want.items))


def equivalent(answer: str, gold: str) -> bool:
    """Whether a model's answer equals a gold LaTeX answer (MATH ``\\boxed`` content). Never raises."""
    if not isinstance(answer, str) or not isinstance(gold, str):
        return False
    want = parse_answer(gold)
    if want is not None:
        got = parse_answer(answer, thousands=isinstance(want, Scalar))
        if got is not None and values_equal(got, want):
            return True
    key = text_key(gold)
    return bool(key) and text_key(answer) == key


def number_equivalent(answer: str, target: int | float) -> bool:
    """Whether a model's answer equals a plain number (GSM-Hard's ``target``). Never raises."""
    import sympy
    if not isinstance(answer, str) or isinstance(target, bool) or not isinstance(target, (int, float)):
        return False
    got = parse_answer(answer)
    if not isinstance(got, Scalar):
        return False
    if isinstance(target, float) and not math.isfinite(target):
        return False
    if isinstance(target, int) or target.is_integer():
        want = Scalar(sympy.Integer(int(target)), None)
    else:  # the stored float as the decimal it prints as (28571.428571428572), with its decimal places
        want = Scalar(sympy.Rational(repr(target)), max(1, -Decimal(repr(target)).as_tuple().exponent))
    return scalars_equal(got, want)


def format_number(value: int | float) -> str:
    """Text of a stored number: integral values without ``.0``, others as Python writes them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
