"""Our interpreter vs a real ASP solver (clingo, SPEC §6.6): same ``target/2`` atoms."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlens.nesy import FoldSEM, Literal, Rule, RuleSet

clingo = pytest.importorskip("clingo")

CLASSES = ["a", "b", 3, "C c"]
COLORS = ["red", "green", "Dark Blue"]
UNARY = [f"f{j}" for j in range(6)]


def _solve(program: str) -> set[tuple[str, object]]:
    ctl = clingo.Control(["--warn=none"])
    ctl.add("base", [], program + "\n#show target/2.\n")
    ctl.ground([("base", [])])
    models = []
    with ctl.solve(yield_=True) as handle:
        for m in handle:
            models.append(m.symbols(shown=True))
    assert len(models) == 1, "a stratified program has exactly one answer set"
    out = set()
    for s in models[0]:
        ex, cls = s.arguments
        if cls.type == clingo.SymbolType.Number:
            c: object = cls.number
        elif cls.type == clingo.SymbolType.String:
            c = cls.string
        else:
            c = cls.name
        out.add((ex.name, c))
    return out


def _ours(rs: RuleSet, data) -> set[tuple[str, object]]:
    f = rs.fired(data)
    tr = rs.target_rules
    return {(f"e{i}", tr[k].cls) for i, k in zip(*np.nonzero(f))}


def _random_literal(rng, n_ab: int, level: int) -> Literal:
    kind = rng.integers(0, 10)
    if kind < 5:
        return Literal(UNARY[rng.integers(0, len(UNARY))], negated=bool(rng.integers(0, 2)))
    if kind < 7:
        return Literal("color", "==", COLORS[rng.integers(0, 3)], negated=bool(rng.integers(0, 2)))
    if kind < 9:
        return Literal("age", "<=" if rng.integers(0, 2) else ">", int(rng.integers(-1, 10)))
    # call a deeper exception predicate (acyclic: ab_k only calls ab_j with j > k)
    j = int(rng.integers(level + 1, n_ab + 2))  # may be undefined (then false)
    return Literal(f"ab{j}", negated=bool(rng.integers(0, 4) > 0))


def _random_program(rng) -> RuleSet:
    n_ab = int(rng.integers(0, 4))
    rules = []
    for _ in range(int(rng.integers(1, 5))):
        body = tuple(_random_literal(rng, n_ab, 0) for _ in range(int(rng.integers(0, 4))))
        rules.append(Rule("target", body, CLASSES[rng.integers(0, len(CLASSES))]))
    for k in range(1, n_ab + 1):
        for _ in range(int(rng.integers(1, 3))):
            body = tuple(_random_literal(rng, n_ab, k) for _ in range(int(rng.integers(1, 4))))
            rules.append(Rule(f"ab{k}", body))
    return RuleSet(tuple(rules))


def _random_facts(rng, n: int) -> dict:
    data = {name: rng.integers(0, 2, size=n) for name in UNARY}
    data["color"] = np.array([COLORS[i] for i in rng.integers(0, 3, size=n)], dtype=object)
    data["age"] = rng.integers(0, 10, size=n)
    return data


def test_random_programs_agree_with_clingo():
    rng = np.random.default_rng(2024)
    n_cases, n_nonempty = 300, 0
    for case in range(n_cases):
        rs = _random_program(rng)
        data = _random_facts(rng, 12)
        text = rs.to_asp()
        # the printed text is what clingo reads; it parses back to the same program
        assert RuleSet.from_asp(text) == rs
        facts = rs.facts_asp(data)
        theirs = _solve(text + facts)
        ours = _ours(rs, data)
        assert ours == theirs, f"case {case}:\n{text}"
        n_nonempty += bool(ours)
    assert n_nonempty > n_cases // 3  # the generator exercises firing rules, not only empty sets


def test_learned_programs_load_in_clingo_and_agree():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    # NeSy case: a 0/1 table with exceptions
    X = (rng.random((600, 30)) < 0.2).astype(np.uint8)
    y = np.argmax(2 * X[:, :4] + rng.random((600, 4)), axis=1)
    m = FoldSEM().fit(X, y)
    assert m.rules_.derived, "expected exception rules in this program"
    data = {f"f{j}": X[:200, j] for j in range(30)}
    assert _ours(m.rules_, data) == _solve(m.rules_.to_asp() + m.rules_.facts_asp(data))
    # mixed table with integer numeric and categorical columns
    df = pd.DataFrame({
        "age": rng.integers(0, 60, size=400),
        "color": rng.choice(["red", "green", "Dark Blue"], size=400),
        "flag": rng.integers(0, 2, size=400),
    })
    lab = np.where((df["age"] > 30) & (df["color"] != "green"), "hi", np.where(df["flag"] == 1, "mid", "lo"))
    lab = np.where(rng.random(400) < 0.1, "lo", lab)
    m = FoldSEM().fit(df, lab)
    text = m.rules_.to_asp()
    assert "N1" in text and "color(X," in text
    assert _ours(m.rules_, df) == _solve(text + m.rules_.facts_asp(df))
