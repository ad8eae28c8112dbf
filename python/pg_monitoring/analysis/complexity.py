"""How much work a GraphQL document asks for, before it runs.

    from pg_monitoring.analysis.complexity import analyze_query_complexity

    complexity = analyze_query_complexity("{ user(id: 1) { name posts { title } } }")
    complexity.score, complexity.depth, complexity.field_count      # (8, 3, 4)

The document is parsed by graphql-core (the `graphql` extra); no schema is needed. Fragments
count where they are spread, as if written there: named ones (`...UserFields`, each spread
counted again) and inline ones (`... on User { }`). Directives (`@skip`, `@include`) are
ignored: every field counts, the worst case.

- field_count: the fields selected, `__typename` included;
- depth: how deep fields nest; a field at the top of the operation is at depth 1, a field
  in its selection at depth 2 (fragments add no depth of their own);
- score: the sum over fields of their depth: `{ user { name } }` scores 1 + 2 = 3. A nested
  field runs once per parent it is selected under, so the deeper, the dearer.

The analysis has limits on its own input, checked before graphql-core parses and cheaply
(each a QueryComplexityError, a ValueError): the document's size in UTF-8 bytes, its
tokens, its depth (and how deep its brackets nest: at most 2 * max_depth + 2, room for an
inline fragment at every level), and the fields it expands to, since fragments spreading
other fragments twice double the count at each step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ..errors import PgMonitoringError

try:
    from graphql import GraphQLError, parse
    from graphql.language import (
        DocumentNode,
        FieldNode,
        FragmentDefinitionNode,
        FragmentSpreadNode,
        InlineFragmentNode,
        Lexer,
        OperationDefinitionNode,
        SelectionSetNode,
        Source,
        TokenKind,
    )
except ImportError as error:
    raise ImportError(
        "graphql-core is not installed: install the extra, `pip install 'pg-monitoring[graphql]'`",
        name="graphql",
    ) from error

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_TOKENS",
    "FragmentCycleError",
    "InvalidQueryError",
    "QueryComplexity",
    "QueryComplexityError",
    "QuerySyntaxError",
    "QueryTooDeepError",
    "QueryTooLargeError",
    "analyze_query_complexity",
]

MAX_BYTES = 100_000
# graphql-core is pure Python: a document at this limit took 0.1-0.2 s to analyse on a shared
# 2-core test machine (typical queries have a few hundred tokens: a few milliseconds)
MAX_TOKENS = 5_000
MAX_DEPTH = 20
MAX_FIELDS = 100_000

_OPENING = {TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L}
_CLOSING = {TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R}


class QueryComplexityError(PgMonitoringError, ValueError):
    """The document can not be analysed; the message says why."""


class QueryTooLargeError(QueryComplexityError):
    """Over max_bytes, max_tokens or (fragments expanded) max_fields."""


class QueryTooDeepError(QueryComplexityError):
    """Fields nest deeper than max_depth, or brackets deeper than 2 * max_depth + 2."""


class QuerySyntaxError(QueryComplexityError):
    """Not GraphQL: graphql-core's message, with the line and column."""


class InvalidQueryError(QueryComplexityError):
    """GraphQL, but not a document that could run: no operation, an unknown operation name,
    a spread of an unknown fragment, a fragment defined twice."""


class FragmentCycleError(InvalidQueryError):
    """Fragments spread each other in a cycle (GraphQL refuses those: they never end)."""


@dataclass(frozen=True)
class QueryComplexity:
    """See the module's documentation for what each counts."""

    score: int
    depth: int
    field_count: int


@dataclass(frozen=True)
class _Cost:
    """A selection set's cost with its fields' depths counted from 1."""

    fields: int = 0
    score: int = 0
    depth: int = 0

    def __add__(self, other: _Cost) -> _Cost:
        return _Cost(
            self.fields + other.fields, self.score + other.score, max(self.depth, other.depth)
        )

    def nested(self) -> _Cost:
        """This selection set's cost one level down, under a field."""
        return _Cost(self.fields, self.score + self.fields, self.depth + 1 if self.fields else 0)


def analyze_query_complexity(
    query: str,
    operation_name: str | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    max_tokens: int = MAX_TOKENS,
    max_depth: int = MAX_DEPTH,
    max_fields: int = MAX_FIELDS,
) -> QueryComplexity:
    """The score, depth and field count of the operation `operation_name` of `query`, or of
    its only operation. A document of several operations without a name is measured by its
    dearest (highest score, the first of equals): the one a client could run at worst.

    Raises a QueryComplexityError (a ValueError) over a limit, on a syntax error, a fragment
    cycle, an unknown fragment or operation.
    """
    if not isinstance(query, str):
        raise TypeError(f"the query is a str, not {type(query).__name__}")
    if len(query) > max_bytes or len(query.encode()) > max_bytes:
        raise QueryTooLargeError(f"the query is longer than max_bytes ({max_bytes} bytes)")
    source = Source(query)
    try:
        _check_tokens(source, max_tokens, 2 * max_depth + 2)
        document = parse(source, no_location=True)
        costs = _operation_costs(document)
    except GraphQLError as error:
        raise QuerySyntaxError(str(error)) from None
    except RecursionError:  # a stack smaller than the limits allow for
        raise QueryTooDeepError("the query nests too deeply to analyse") from None
    if not costs:
        raise InvalidQueryError("the document has no operation")
    if operation_name is not None:
        if operation_name not in costs:
            raise InvalidQueryError(f"the document has no operation named {operation_name!r}")
        cost = costs[operation_name]
    else:
        cost = max(costs.values(), key=lambda c: c.score)
    if cost.depth > max_depth:
        raise QueryTooDeepError(
            f"the query is {cost.depth} fields deep, over max_depth {max_depth}"
        )
    if cost.fields > max_fields:
        raise QueryTooLargeError(
            f"the query selects {cost.fields} fields with its fragments spread, "
            f"over max_fields {max_fields}"
        )
    return QueryComplexity(score=cost.score, depth=cost.depth, field_count=cost.fields)


def _check_tokens(source: Source, max_tokens: int, max_nesting: int) -> None:
    """Raises before parsing when the document has too many tokens or nests its brackets
    too deeply: the lexer walks the text once, in constant space; the parser recurses."""
    lexer = Lexer(source)
    tokens = nesting = 0
    token = lexer.advance()
    while token.kind != TokenKind.EOF:
        tokens += 1
        if tokens > max_tokens:
            raise QueryTooLargeError(f"the query has more than max_tokens ({max_tokens}) tokens")
        if token.kind in _OPENING:
            nesting += 1
            if nesting > max_nesting:
                raise QueryTooDeepError(
                    f"the query's brackets nest more than {max_nesting} deep (2 * max_depth + 2)"
                )
        elif token.kind in _CLOSING:
            nesting -= 1
        token = lexer.advance()


def _operation_costs(document: DocumentNode) -> dict[str | None, _Cost]:
    """Each operation's cost by name (None for an anonymous one), in document order."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    operations: list[OperationDefinitionNode] = []
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            name = definition.name.value
            if name in fragments:
                raise InvalidQueryError(f"fragment {name!r} is defined twice")
            fragments[name] = definition
        elif isinstance(definition, OperationDefinitionNode):
            operations.append(definition)
    fragment_costs = _fragment_costs(fragments)
    costs: dict[str | None, _Cost] = {}
    for operation in operations:
        name = operation.name.value if operation.name else None
        costs.setdefault(name, _cost(operation.selection_set, fragment_costs))
    return costs


def _fragment_costs(fragments: Mapping[str, FragmentDefinitionNode]) -> dict[str, _Cost]:
    """Every fragment's cost, each costed once after the fragments it spreads (so that a
    chain of spreads costs linear time, and recursion only as deep as brackets nest)."""
    spreads = {name: list(_spreads(f.selection_set)) for name, f in fragments.items()}
    for name, spread in spreads.items():
        for target in spread:
            if target not in fragments:
                raise InvalidQueryError(f"fragment {name!r} spreads unknown fragment {target!r}")
    costs: dict[str, _Cost] = {}
    for root in fragments:
        if root in costs:
            continue
        # depth-first without recursion; `path` holds the fragments being costed
        path: list[str] = [root]
        pending: list[Iterator[str]] = [iter(spreads[root])]
        while path:
            target = next(pending[-1], None)
            if target is None:
                done = path.pop()
                pending.pop()
                costs[done] = _cost(fragments[done].selection_set, costs)
            elif target in path:
                cycle = [*path[path.index(target) :], target]
                raise FragmentCycleError("fragments spread each other: " + " -> ".join(cycle))
            elif target not in costs:
                path.append(target)
                pending.append(iter(spreads[target]))
    return costs


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        elif isinstance(selection, FieldNode | InlineFragmentNode):
            yield from _spreads(selection.selection_set)


def _cost(selection_set: SelectionSetNode | None, fragments: Mapping[str, _Cost]) -> _Cost:
    total = _Cost()
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            total += _Cost(1, 1, 1) + _cost(selection.selection_set, fragments).nested()
        elif isinstance(selection, InlineFragmentNode):
            total += _cost(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in fragments:
                raise InvalidQueryError(f"the query spreads unknown fragment {name!r}")
            total += fragments[name]
    return total
