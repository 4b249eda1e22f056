"""The parser of rule programs: both dialects of :meth:`RuleSet.to_asp
<cnnlens.nesy.RuleSet.to_asp>`, hand-written text and the NeSyFOLD raw style (docs/algorithms.md §6.6).

Errors are :class:`RuleParseError` with line and column. The parser builds the program through
the ``build`` callable given to :meth:`_Parser.parse` (``RuleSet``), so it does not depend on the
rule-set module.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import CnnlensError
from .rules import EXAMPLE, TARGET, Literal, Rule

__all__ = ["RuleParseError"]


class RuleParseError(CnnlensError):
    """A rule file or program text is malformed; the message gives line and column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"line {line}, column {column}: {message}")


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>%[^\n]*)
  | (?P<neck>:-)
  | (?P<cmp><=|=<|>=|==|!=|\\=|<|>|=)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-z][A-Za-z0-9_]*)
  | (?P<var>[A-Z_][A-Za-z0-9_]*)
  | (?P<dstring>"(?:[^"\\\n]|\\.)*")
  | (?P<sstring>'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[(),.])
    """,
    re.VERBOSE,
)


def _default_comment(comment: str) -> str | None:
    """The class text of a ``% default: <class>`` comment, else None (linear time: plain string
    operations, no backtracking regex)."""
    s = comment[1:].lstrip()
    if not s.startswith("default"):
        return None
    s = s[len("default"):].lstrip()
    if not s.startswith(":"):
        return None
    s = s[1:].strip()
    return s or None


@dataclass
class _Tok:
    kind: str
    text: str
    line: int
    col: int


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise CnnlensError(f"program text must be a str, got {type(text).__name__}")
        self.text = text
        self.default: Any = None
        # tokens are produced lazily, so malformed text fails at its first bad token
        self._gen = self._lex_iter(text)
        self.toks: list[_Tok] = []
        self.i = 0

    def _lex(self, text: str) -> list[_Tok]:
        return list(self._lex_iter(text))

    def _lex_iter(self, text: str):
        pos, line, lstart = 0, 1, 0
        n = len(text)
        scan = _TOKEN.scanner(text).match  # continues where the last match ended
        while pos < n:
            m = scan()
            if m is None:
                ch = text[pos]
                raise RuleParseError(f"unexpected character {ch!r}", line, pos - lstart + 1)
            kind = m.lastgroup or ""
            col = pos - lstart + 1
            if kind == "nl":
                line += 1
                lstart = m.end()
            elif kind == "comment":
                dtext = _default_comment(m.group())
                if dtext is not None:
                    sub = _Parser.__new__(_Parser)
                    sub.text = dtext
                    try:
                        sub.toks = sub._lex(dtext)
                    except RuleParseError as exc:
                        raise RuleParseError(f"bad default class: {exc.reason}", line, col) from None
                    sub.i = 0
                    if len(sub.toks) != 2 or sub.toks[0].kind not in ("ident", "number", "dstring", "sstring"):
                        shown = dtext if len(dtext) <= 60 else dtext[:60] + "…"
                        raise RuleParseError(f"bad default class {shown!r}", line, col)
                    self.default = sub._const_value(sub.toks[0])
            elif kind != "ws":
                yield _Tok(kind, m.group(), line, col)
            pos = m.end()
        yield _Tok("eof", "", line, pos - lstart + 1)

    # helpers
    def peek(self, k: int = 0) -> _Tok:
        toks = self.toks
        while len(toks) <= self.i + k and (not toks or toks[-1].kind != "eof"):
            toks.append(next(self._gen))
        return toks[min(self.i + k, len(toks) - 1)]

    def next(self) -> _Tok:
        t = self.peek()
        self.i += 1
        return t

    def fail(self, tok: _Tok, expected: str) -> RuleParseError:
        found = "end of text" if tok.kind == "eof" else repr(tok.text)
        return RuleParseError(f"expected {expected} but found {found}", tok.line, tok.col)

    def expect(self, text: str) -> _Tok:
        t = self.next()
        if t.text != text or t.kind in ("dstring", "sstring"):
            raise self.fail(t, repr(text))
        return t

    def _const_value(self, t: _Tok) -> int | str:
        if t.kind == "number":
            if re.fullmatch(r"-?\d+", t.text):
                return int(t.text)
            raise RuleParseError(f"a class or categorical value must be an integer or a name, got {t.text!r}", t.line, t.col)
        if t.kind in ("dstring", "sstring"):
            return _unquote(t.text)
        return t.text

    def pred_name(self) -> str:
        t = self.next()
        if t.kind == "ident":
            if t.text == "not":
                raise self.fail(t, "a predicate name")
            return t.text
        if t.kind == "number" and re.fullmatch(r"\d+", t.text):
            return f"f{t.text}"  # NeSyFOLD raw style: 295(X) is filter 295
        raise self.fail(t, "a predicate name")

    def var(self, expected: str = "the variable X") -> _Tok:
        t = self.next()
        if t.kind != "var":
            raise self.fail(t, expected)
        return t

    # grammar
    def parse(self, build: Callable[[tuple[Rule, ...], Any], Any]) -> Any:
        """The program: ``build(rules, default)``; a :class:`CnnlensError` it raises (e.g. a
        program that is not stratified) becomes a :class:`RuleParseError` at the last token."""
        rules: list[Rule] = []
        while self.peek().kind != "eof":
            rules.append(self.clause())
        try:
            return build(tuple(rules), self.default)
        except RuleParseError:
            raise
        except CnnlensError as exc:
            last = self.toks[-1]
            raise RuleParseError(str(exc), last.line, last.col) from None

    def clause(self) -> Rule:
        start = self.peek()
        head = self.pred_name()
        self.expect("(")
        xv = self.var()
        cls: Any = None
        if head == TARGET:
            self.expect(",")
            t = self.next()
            if t.kind not in ("ident", "number", "dstring", "sstring") or t.text == "not":
                raise self.fail(t, "a class name")
            cls = self._const_value(t)
        elif head == EXAMPLE:
            raise RuleParseError(f"'{EXAMPLE}' is reserved for the domain atom and cannot be a rule head",
                                 start.line, start.col)
        self.expect(")")
        body: list[Literal] = []
        nxt = self.next()
        if nxt.text == ":-" and nxt.kind == "neck":
            numeric_vars: set[str] = set()
            while True:
                lit = self.literal(xv.text, numeric_vars)
                if lit is not None:
                    body.append(lit)
                t = self.next()
                if t.text == "." and t.kind == "punct":
                    break
                if t.text != "," or t.kind != "punct":
                    raise self.fail(t, "',' or '.'")
        elif not (nxt.text == "." and nxt.kind == "punct"):
            raise self.fail(nxt, "':-' or '.'")
        try:
            return Rule(head, tuple(body), cls)
        except CnnlensError as exc:
            raise RuleParseError(str(exc), start.line, start.col) from None

    def literal(self, x: str, numeric_vars: set[str]) -> Literal | None:
        start = self.peek()
        negated = False
        if start.kind == "ident" and start.text == "not":
            self.next()
            negated = True
        name_tok = self.peek()
        name = self.pred_name()
        if name == TARGET:
            raise RuleParseError("'target' cannot be used in a rule body", name_tok.line, name_tok.col)
        self.expect("(")
        v = self.var()
        if v.text != x:
            raise RuleParseError(f"expected the head variable {x} but found {v.text!r}", v.line, v.col)
        t = self.next()
        if t.text == ")" and t.kind == "punct":
            if name == EXAMPLE:
                if negated:
                    raise RuleParseError(f"'{EXAMPLE}(X)' cannot be negated", start.line, start.col)
                return None
            return Literal(name, "holds", None, negated)
        if t.text != "," or t.kind != "punct":
            raise self.fail(t, "')' or ','")
        arg = self.next()
        if arg.kind == "var":
            if negated:
                raise RuleParseError("a numeric literal cannot be negated; use the opposite comparison",
                                     start.line, start.col)
            if arg.text == x or arg.text in numeric_vars:
                raise RuleParseError(f"variable {arg.text} is already used in this rule", arg.line, arg.col)
            numeric_vars.add(arg.text)
            self.expect(")")
            self.expect(",")
            v2 = self.var(f"the variable {arg.text}")
            if v2.text != arg.text:
                raise RuleParseError(f"expected the variable {arg.text} but found {v2.text!r}", v2.line, v2.col)
            op = self.next()
            if op.kind != "cmp":
                raise self.fail(op, "a comparison ('=<', '<=' or '>')")
            if op.text not in ("<=", "=<", ">"):
                raise RuleParseError(f"unsupported comparison {op.text!r}; FOLD rules use '=<' (or '<=') and '>'",
                                     op.line, op.col)
            num = self.next()
            if num.kind != "number":
                raise self.fail(num, "a number")
            value = float(num.text)
            if not math.isfinite(value):
                raise RuleParseError(f"threshold {num.text} is not finite", num.line, num.col)
            return Literal(name, "<=" if op.text in ("<=", "=<") else ">", value)
        if arg.kind not in ("ident", "number", "dstring", "sstring") or arg.text == "not":
            raise self.fail(arg, "a value or a variable")
        value = self._const_value(arg)
        self.expect(")")
        return Literal(name, "==", value, negated)
