"""pg_monitoring.analysis.complexity on real GraphQL documents: what it counts, fragments
counted where spread, and its limits refusing hostile documents quickly."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pg_monitoring.analysis.complexity import (
    FragmentCycleError,
    InvalidQueryError,
    QueryComplexity,
    QueryComplexityError,
    QuerySyntaxError,
    QueryTooDeepError,
    QueryTooLargeError,
    analyze_query_complexity,
)

from .conftest import import_error_without

USER_QUERY = """
query GetUser($id: ID!) {
  user(id: $id) {
    id
    name @include(if: true)
    ...Posts
    ... on Admin { permissions }
  }
}

fragment Posts on User {
  posts(first: 10) { title comments { body } }
}
"""


@pytest.mark.parametrize(
    ("query", "score", "depth", "fields"),
    [
        ("{ a }", 1, 1, 1),
        ("{ a b c }", 3, 1, 3),
        ("{ user(id: 1) { name posts { title } } }", 8, 3, 4),
        ("query Q($n: Int = 3) { a(first: $n) { __typename } }", 3, 2, 2),
        ('mutation { createUser(input: {name: "x"}) { id } }', 3, 2, 2),
        ("subscription S { events { id } }", 3, 2, 2),
        # user 1, id 2, name 2, posts 2, title 3, comments 3, body 4, permissions 2
        (USER_QUERY, 19, 4, 8),
        # a fragment spread twice counts twice, at the depth of each spread: a1 x2 b1 c2 x3
        ("{ a { ...F } b { c { ...F } } } fragment F on T { x }", 1 + 2 + 1 + 2 + 3, 3, 5),
        ("{ ... on T { a { ... { b } } } }", 3, 2, 2),
        # a fragment nobody spreads costs nothing
        ("{ a } fragment Unused on T { x y z }", 1, 1, 1),
    ],
)
def test_counts_of_real_documents(query: str, score: int, depth: int, fields: int) -> None:
    assert analyze_query_complexity(query) == QueryComplexity(score, depth, fields)


def test_the_module_documentation_example_and_frozen_result() -> None:
    complexity = analyze_query_complexity("{ user(id: 1) { name posts { title } } }")
    assert (complexity.score, complexity.depth, complexity.field_count) == (8, 3, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        complexity.score = 0  # type: ignore[misc]


def test_which_operation_is_measured() -> None:
    document = "query Small { a } query Big { a { b c } } query Same { x { y z } }"
    assert analyze_query_complexity(document, "Small").score == 1
    assert analyze_query_complexity(document, "Same").score == 5
    # without a name: the dearest, the first of equals
    assert analyze_query_complexity(document) == analyze_query_complexity(document, "Big")
    with pytest.raises(InvalidQueryError, match="no operation named 'Other'"):
        analyze_query_complexity(document, "Other")
    with pytest.raises(InvalidQueryError, match="no operation"):
        analyze_query_complexity("fragment F on T { a }")
    with pytest.raises(InvalidQueryError, match="no operation"):
        analyze_query_complexity("type Query { a: Int }")


@pytest.mark.parametrize(
    ("document", "cycle"),
    [
        ("{ ...A } fragment A on T { ...A }", "A -> A"),
        (
            "{ ...A } fragment A on T { b { ...B } } fragment B on T { ... on T { ...A } }",
            "A -> B -> A",
        ),
        # a cycle among fragments no operation spreads: GraphQL refuses the document too
        (
            "{ a } fragment X on T { ...Y } fragment Y on T { ...Z } fragment Z on T { ...X }",
            "X -> Y -> Z -> X",
        ),
    ],
)
def test_fragment_cycles_are_refused(document: str, cycle: str) -> None:
    with pytest.raises(FragmentCycleError, match=cycle):
        analyze_query_complexity(document)


def test_unknown_and_duplicate_fragments() -> None:
    with pytest.raises(InvalidQueryError, match="unknown fragment 'Nope'"):
        analyze_query_complexity("{ ...Nope }")
    with pytest.raises(InvalidQueryError, match="'A' spreads unknown fragment 'B'"):
        analyze_query_complexity("{ ...A } fragment A on T { ...B }")
    with pytest.raises(InvalidQueryError, match="'A' is defined twice"):
        analyze_query_complexity("{ ...A } fragment A on T { a } fragment A on T { b }")


@pytest.mark.parametrize(
    "query", ["{ a { b }", "{ a(x: ) }", 'query { a(s: "unterminated) }', "{ a } }"]
)
def test_syntax_errors(query: str) -> None:
    with pytest.raises(QuerySyntaxError, match="Syntax Error") as raised:
        analyze_query_complexity(query)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, QueryComplexityError)


def refused_quickly(query: str, error: type[Exception], match: str, **limits: int) -> None:
    started = time.perf_counter()
    with pytest.raises(error, match=match):
        analyze_query_complexity(query, **limits)
    assert time.perf_counter() - started < 0.5, "refused before any costly work"


def test_limits_on_its_own_input() -> None:
    refused_quickly("{ a }" + " " * 10_000_000, QueryTooLargeError, "max_bytes")
    refused_quickly("{ é }" * 30_000, QueryTooLargeError, "max_bytes")  # 2 bytes a character
    refused_quickly("{ " + "a " * 20_000 + "}", QueryTooLargeError, "max_tokens")
    refused_quickly("{ " + "a " * 20 + "}", QueryTooLargeError, "max_tokens", max_tokens=10)
    # nesting that would overflow a recursive parser, refused by the lexer's walk
    refused_quickly(
        "{" + "a{" * 20_000 + "b" + "}" * 20_001, QueryTooDeepError, "nest more than 42"
    )
    refused_quickly("{ a(x: " + "[" * 20_000 + "]" * 20_000 + ") }", QueryTooDeepError, "nest")
    # field depth through fragments, which bracket nesting does not see
    chain = "".join(f"fragment F{i} on T {{ f {{ ...F{i + 1} }} }} " for i in range(30))
    refused_quickly(
        "{ ...F0 } " + chain + "fragment F30 on T { x }", QueryTooDeepError, "31 fields deep"
    )
    refused_quickly("{ a { b { c } } }", QueryTooDeepError, "over max_depth 2", max_depth=2)
    # each fragment spreads the next twice: 2**200 fields from a few kilobytes
    bomb = "".join(f"fragment F{i} on T {{ ...F{i + 1} ...F{i + 1} }} " for i in range(200))
    refused_quickly(
        "{ ...F0 } " + bomb + "fragment F200 on T { x }", QueryTooLargeError, "max_fields"
    )
    # what is just within bounds passes
    assert analyze_query_complexity("{" + "a{" * 19 + "b" + "}" * 20).depth == 20


def test_the_query_is_text() -> None:
    with pytest.raises(TypeError, match="not bytes"):
        analyze_query_complexity(b"{ a }")  # type: ignore[arg-type]


def test_without_graphql_core_the_error_names_the_extra() -> None:
    message = import_error_without("graphql", "pg_monitoring.analysis.complexity")
    assert "pg-monitoring[graphql]" in message


# Random selection trees: the counts computed from the tree itself, the document written
# plainly, with fragments, and with inline fragments, all analysed alike.


@dataclass(frozen=True)
class Field:
    name: str
    children: tuple[Field, ...] = ()


def fields() -> st.SearchStrategy[tuple[Field, ...]]:
    names = st.sampled_from(["id", "name", "user", "posts", "__typename", "a_b"])
    tree = st.recursive(
        st.builds(Field, names),
        lambda inner: st.builds(Field, names, st.lists(inner, min_size=1, max_size=4).map(tuple)),
        max_leaves=40,
    )
    return st.lists(tree, min_size=1, max_size=4).map(tuple)


def expected(selection: tuple[Field, ...], depth: int = 1) -> QueryComplexity:
    score, deepest, count = 0, 0, 0
    for field in selection:
        below = expected(field.children, depth + 1)
        score += depth + below.score
        deepest = max(deepest, depth, below.depth)
        count += 1 + below.field_count
    return QueryComplexity(score, deepest, count)


def written(selection: tuple[Field, ...], style: str, fragments: list[str]) -> str:
    parts = []
    for field in selection:
        if not field.children:
            parts.append(field.name)
            continue
        inner = written(field.children, style, fragments)
        if style == "fragments":
            name = f"F{len(fragments)}"
            fragments.append(f"fragment {name} on T {{ {inner} }}")
            inner = f"...{name}"
        elif style == "inline":
            inner = f"... on T {{ {inner} }} ... @include(if: true) {{ __typename }}"
        parts.append(f"{field.name}(first: 2) {{ {inner} }}")
    return " ".join(parts)


@settings(max_examples=200, deadline=None)
@given(fields(), st.sampled_from(["plain", "fragments"]))
def test_random_trees(selection: tuple[Field, ...], style: str) -> None:
    fragments: list[str] = []
    document = "query Q { " + written(selection, style, fragments) + " } " + " ".join(fragments)
    assert analyze_query_complexity(document, max_depth=100) == expected(selection)


@settings(max_examples=100, deadline=None)
@given(fields())
def test_random_trees_with_inline_fragments(selection: tuple[Field, ...]) -> None:
    document = "{ " + written(selection, "inline", []) + " }"
    plain = expected(selection)
    # each field with children gained a __typename, one level down
    with_typename = expected(tuple(_with_typename(f) for f in selection))
    assert plain.depth == with_typename.depth
    assert analyze_query_complexity(document, max_depth=100) == with_typename


def _with_typename(field: Field) -> Field:
    if not field.children:
        return field
    return Field(field.name, (*map(_with_typename, field.children), Field("__typename")))
