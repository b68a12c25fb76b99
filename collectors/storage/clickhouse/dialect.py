"""The analyses' DuckDB SQL as ClickHouse SQL, with the same answers, and their parameters as ClickHouse's own.

The analyses are written once, in DuckDB's dialect (collectors/storage/reader.py). To answer them on ClickHouse the
text is parsed by sqlglot's DuckDB reader and written by a ClickHouse writer whose output is exact where sqlglot's
stock one is not: ``quantile_cont`` is the exact linear interpolation over the sorted values, computed as DuckDB
computes it (``quantileExactInclusive`` interpolates alike but rounds the last bit apart more often), ``bool_or`` a
maximum, ``list(... ORDER BY ...) FILTER (...)`` an ordered ``groupArrayIf``, ``count`` a signed 64-bit number as
in DuckDB (so that ``count(*) - 1`` may go below zero), a boolean column a ``Bool`` (not ``UInt8``),
``json_extract_string`` NULL where DuckDB says NULL, ``UNION ALL BY NAME`` a union in the first branch's order.
What the reader sets per query (``SETTINGS``: outer joins fill NULLs, aggregates of nothing are NULL, a column
name wins over an alias of the same name, as DuckDB resolves them) is in collectors/storage/clickhouse/reader.py.

Parameters (``$name`` and positional ``?``) become ClickHouse query parameters, ``{name:Type}`` with the type
taken from the Python value, bound by the client and never spliced into the text; a None is the constant NULL
(a NULL parameter has no type to bind it as). A translation is cached per query text and set of None parameters.

One fragment has no faithful translation: the flows of collectors/analyses/latency.py (``FLOWS``, a recursive
CTE ``USING KEY``, which ClickHouse lacks); ``FRAGMENTS`` holds its hand-written ClickHouse form, an iterated
smallest-neighbour labelling that stops when no label changes, which names every linked trace by the smallest
trace id of its component as the DuckDB form does.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse

from collectors.analyses import roles
from collectors.analyses.deliveries import PUBLISHES
from collectors.analyses.latency import FLOWS
from collectors.analyses.observations import _ONCE

_TOKEN = "__p_{}__"
_TOKEN_PATTERN = re.compile(r"__p_([A-Za-z0-9_]+?)__")
_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_FRAGMENT_TABLE = "__fragment_{}__"

_FLOWS_CLICKHOUSE = """
WITH RECURSIVE edges AS (
    SELECT DISTINCT TraceId AS a, LinkedTraceId AS b FROM span_links WHERE TraceId <> LinkedTraceId
    UNION DISTINCT SELECT DISTINCT LinkedTraceId AS a, TraceId AS b FROM span_links WHERE TraceId <> LinkedTraceId
),
around AS (SELECT a, b FROM edges UNION ALL SELECT DISTINCT a, a AS b FROM edges),
named AS (
    SELECT a AS trace_id, least(a, min(b)) AS flow FROM edges GROUP BY a
    UNION ALL
    SELECT trace_id, flow FROM (
        SELECT trace_id, flow, max(flow < old) OVER () AS moved FROM (
            SELECT n.a AS trace_id, min(w.flow) AS flow, minIf(w.flow, n.b = n.a) AS old
            FROM named w JOIN around n ON n.b = w.trace_id GROUP BY n.a
        )
    ) WHERE moved
)
SELECT trace_id, min(flow) AS flow FROM named GROUP BY trace_id
"""
FRAGMENTS = {FLOWS: _FLOWS_CLICKHOUSE}
"""DuckDB fragments with no faithful translation, and their hand-written ClickHouse forms."""

# ClickHouse 26.9 answers a correlated EXISTS wrongly for an outer row with a NULL in a column the subquery
# compares (it joins the outer rows back on those columns, and NULL never joins): the analyses' two NOT EXISTS
# that compare nullable columns (IS NOT DISTINCT FROM) are written as anti-joins on the span's identity
# (TraceId, SpanId: one row per span in the store), the same relation in both engines.
_ONCE_AS_JOIN = f"""
SELECT * FROM otel_traces s
WHERE {roles.delivery("s")} AND (s.TraceId, s.SpanId) NOT IN (
    SELECT (i.TraceId, i.SpanId) FROM otel_traces i JOIN otel_traces o
        ON o.TraceId = i.TraceId AND o.ParentSpanId = i.ParentSpanId AND o.ServiceName = i.ServiceName
       AND o.MsgConsumerGroup IS NOT DISTINCT FROM i.MsgConsumerGroup
       AND o.MsgDestination IS NOT DISTINCT FROM i.MsgDestination AND o.MsgMessageId IS NOT DISTINCT FROM i.MsgMessageId
    WHERE {roles.delivery("i")} AND {roles.delivery("o")} AND o.ParentSpanId <> '' AND o.SpanId <> i.SpanId
      AND o.Timestamp < i.Timestamp AND o.Timestamp + o.Duration >= i.Timestamp + i.Duration)
"""
_PUBLISHES_AS_JOIN = f"""
SELECT * FROM otel_traces p
WHERE {roles.publish("p")} AND (p.TraceId, p.SpanId) NOT IN (
    SELECT (i.TraceId, i.SpanId) FROM otel_traces i JOIN otel_traces c
        ON c.TraceId = i.TraceId AND c.ParentSpanId = i.SpanId
       AND c.MsgDestination IS NOT DISTINCT FROM i.MsgDestination AND c.MsgMessageId IS NOT DISTINCT FROM i.MsgMessageId
    WHERE {roles.publish("i")} AND {roles.publish("c")})
"""
REWRITES = {_ONCE: _ONCE_AS_JOIN, PUBLISHES: _PUBLISHES_AS_JOIN}
"""DuckDB fragments read in an equivalent DuckDB form before translation (the same rows in DuckDB too)."""


class TranslationError(ValueError):
    """A query the ClickHouse writer cannot express with DuckDB's answers."""


# --- parameters --------------------------------------------------------------------------------------------------


def _outside_quotes(sql: str, replace) -> str:
    """``replace`` applied to every stretch of ``sql`` outside quoted strings, identifiers and comments."""
    out, start, i, closing = [], 0, 0, None
    while i < len(sql):
        if closing is None and (sql[i] in "'\"" or sql.startswith("--", i)):
            out.append(replace(sql[start:i]))
            start, closing = i, "\n" if sql[i] == "-" else sql[i]
        elif closing is not None and sql[i] == closing:
            out.append(sql[start : i + 1])
            start, closing = i + 1, None
        i += 1
    out.append(replace(sql[start:]) if closing is None else sql[start:])
    return "".join(out)


def _tokenise_parameters(sql: str) -> str:
    """``$name`` and ``?`` as identifiers that survive parsing (``?`` numbered from 0 in order)."""
    counter = iter(range(1_000_000))

    def replace(text: str) -> str:
        text = _NAMED.sub(lambda m: _TOKEN.format(m.group(1)), text)
        return re.sub(r"\?", lambda _: _TOKEN.format(next(counter)), text)

    return _outside_quotes(sql, replace)


def clickhouse_type(value: object) -> str:
    """The ClickHouse type a Python parameter value is bound as."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64" if -(2**63) <= value < 2**63 else "Int128"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, str):
        return "String"
    raise TranslationError(f"no ClickHouse parameter type for {type(value).__name__}")


def parameter_values(parameters: Mapping[str, object] | Sequence[object] | None) -> dict[str, object]:
    """Named parameters as they are; positional ones named by their position."""
    if parameters is None:
        return {}
    if isinstance(parameters, Mapping):
        return dict(parameters)
    return {str(i): value for i, value in enumerate(parameters)}


# --- the writer --------------------------------------------------------------------------------------------------

_PREDICATES = (
    exp.Predicate,
    exp.Connector,
    exp.Not,
    exp.Boolean,
    exp.LogicalOr,
    exp.LogicalAnd,
    exp.Exists,
    exp.In,
    exp.Between,
    exp.Is,
)


def _is_boolean(node: exp.Expression) -> bool:
    """Whether DuckDB types the expression BOOLEAN as far as its form tells (ClickHouse answers UInt8)."""
    if isinstance(node, exp.Paren):
        return _is_boolean(node.this)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return node.to.is_type(exp.DataType.Type.BOOLEAN)
    if isinstance(node, exp.Coalesce):
        return all(_is_boolean(a) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Window):
        return _is_boolean(node.this)
    if isinstance(node, exp.Filter):
        return _is_boolean(node.this)
    if isinstance(node, exp.Case):
        branches = [i.args.get("true") for i in node.args.get("ifs", [])] + [node.args.get("default")]
        return all(b is None or _is_boolean(b) or isinstance(b, exp.Null) for b in branches)
    return isinstance(node, _PREDICATES) and not isinstance(node, exp.Paren)


def _json_path(path: exp.Expression) -> list[str] | None:
    """The keys of a simple DuckDB JSON path (``$.a``, ``$."a.b"``), or None for any other path."""
    if not isinstance(path, exp.JSONPath):
        return None
    keys = []
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        if not isinstance(part, exp.JSONPathKey) or not isinstance(part.this, str):
            return None
        keys.append(part.this)
    return keys


def _quantile(value: str, fraction: str, condition: str | None) -> str:
    """DuckDB's ``quantile_cont``: the sorted values' linear interpolation at (n - 1) * fraction, computed as DuckDB
    computes it (lo * (1 - d) + hi * d), so that the last bit mostly agrees too (``quantileExactInclusive`` rounds
    apart more often; DuckDB's compiled arithmetic still differs in about 1 case in 100 by one unit in the last
    place)."""
    gathered = f"groupArrayIf(toFloat64({value}), {condition})" if condition else f"groupArray(toFloat64({value}))"
    at = f"((length(s) - 1) * {fraction})"
    low, high = f"s[toUInt64(floor({at})) + 1]", f"s[toUInt64(ceil({at})) + 1]"
    weight = f"({at} - floor({at}))"
    pick = f"if(length(s) = 0, NULL, {low} * (1 - {weight}) + {high} * {weight})"
    return f"arrayMap(s -> {pick}, [arraySort({gathered})])[1]"


def _json_shape(text: str) -> str:
    """An approximation of DuckDB's ``json_structure`` (used as a partition key only): the JSON with its keys kept
    and every string, number and boolean replaced by its kind. It differs from DuckDB's where DuckDB merges the
    shapes of an array's elements (``[1, 2]`` and ``[1]`` are one shape there, two here)."""
    keys = f"replaceRegexpAll({text}, " + r"""'"((?:[^"\\\\]|\\\\.)*)":', '\x01\\1\x02:')"""
    strings = f"replaceRegexpAll({keys}, " + r"""'"(?:[^"\\\\]|\\\\.)*"', 's')"""
    numbers = f"replaceRegexpAll({strings}, " + r"""'-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?', '0')"""
    return f"replaceRegexpAll({numbers}, 'true|false', 'b')"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Generator(ClickHouse.Generator):
    """ClickHouse's writer with DuckDB's semantics where the stock one differs."""

    def percentilecont_sql(self, e: exp.PercentileCont) -> str:
        return _quantile(self.sql(e, "this"), self.sql(e, "expression"), None)

    def logicalor_sql(self, e: exp.LogicalOr) -> str:
        return f"max(toBool({self.sql(e, 'this')}))"

    def logicaland_sql(self, e: exp.LogicalAnd) -> str:
        return f"min(toBool({self.sql(e, 'this')}))"

    _in_window = False

    def count_sql(self, e: exp.Count) -> str:
        if self._in_window:
            return self.function_fallback_sql(e)
        return f"toInt64({self.function_fallback_sql(e)})"

    def window_sql(self, e: exp.Window) -> str:
        inner = e.this.this if isinstance(e.this, exp.Filter) else e.this
        if not isinstance(inner, exp.Count):
            return super().window_sql(e)
        self._in_window = True
        try:
            return f"toInt64({super().window_sql(e)})"
        finally:
            self._in_window = False

    def intdiv_sql(self, e: exp.IntDiv) -> str:
        return f"intDiv({self.sql(e, 'this')}, {self.sql(e, 'expression')})"

    def ignorenulls_sql(self, e: exp.IgnoreNulls) -> str:
        return self.sql(e, "this")

    def anyvalue_sql(self, e: exp.AnyValue) -> str:
        return f"any({self.sql(e, 'this')})"

    def length_sql(self, e: exp.Length) -> str:  # the analyses take len() of lists only
        return f"length({self.sql(e, 'this')})"

    def concat_sql(self, e: exp.Concat) -> str:  # DuckDB's concat: NULL as '', any type as its text
        parts = [self.sql(a) if a.is_string else f"ifNull(toString({self.sql(a)}), '')" for a in e.expressions]
        return f"concat({', '.join(parts)})"

    def struct_sql(self, e: exp.Struct) -> str:
        # struct_pack serves as a key: a text that tells tuples apart, NULLs included, and compares equal
        return f"toString(tuple({', '.join(self.sql(a) for a in e.expressions)}))"

    def anonymous_sql(self, e: exp.Anonymous) -> str:
        name = e.name.lower()
        args = [self.sql(a) for a in e.expressions]
        if name == "hash":
            return f"cityHash64(tuple({', '.join(args)}))"
        if name == "arg_min_null":
            return f"argMin(tuple({args[0]}), {args[1]}).1"
        if name == "json_valid":
            return f"isValidJSON({args[0]})"
        if name == "json_structure":
            return _json_shape(args[0])
        return super().anonymous_sql(e)

    def isvalidjson_sql(self, e) -> str:
        return f"isValidJSON({self.sql(e, 'this')})"

    def trycast_sql(self, e: exp.TryCast) -> str:
        inner = e.this.unnest() if isinstance(e.this, exp.Paren) else e.this
        if isinstance(inner, exp.DPipe) and inner.this.is_string and inner.this.name == "0x":
            text = self.sql(inner, "expression")
            return (
                f"if(match({text}, '^[0-9a-fA-F]{{1,16}}$'), "
                f"reinterpretAsUInt64(reverse(unhex(leftPad({text}, 16, '0')))), NULL)"
            )
        return f"accurateCastOrNull({self.sql(e, 'this')}, {_quote(self.sql(e, 'to'))})"

    def literal_sql(self, e: exp.Literal) -> str:
        if not e.is_string and re.fullmatch(r"[0-9]+", e.this) and int(e.this) >= 2**63:
            return f"toInt128('{e.this}')"
        return super().literal_sql(e)

    def jsonextractscalar_sql(self, e: exp.JSONExtractScalar) -> str:
        doc = self.sql(e, "this")
        path = e.expression
        keys = _json_path(path)
        if keys is not None:
            at = "".join(f", {_quote(k)}" for k in keys)
            return (
                f"multiIf(JSONType({doc}{at}) = 'String', JSONExtractString({doc}{at}), "
                f"JSONType({doc}{at}) IN ('Null', 'Array', 'Object') OR NOT JSONHas({doc}{at}), NULL, "
                f"JSONExtractRaw({doc}{at}))"
            )
        text = path.sql("duckdb") if isinstance(path, exp.JSONPath) else self.sql(path)
        match = re.fullmatch(r"'?\$\[\*\]\.(\w+)'?", text)
        if match:  # every element's key, as a list
            return f"arrayMap(x -> JSONExtractString(x, {_quote(match.group(1))}), JSONExtractArrayRaw({doc}))"
        raise TranslationError(f"JSON path {text} has no ClickHouse form here")

    def jsonextract_sql(self, e: exp.JSONExtract) -> str:
        keys = _json_path(e.expression)
        if keys is None:
            raise TranslationError("only simple JSON paths have a ClickHouse form here")
        at = "".join(f", {_quote(k)}" for k in keys)
        doc = self.sql(e, "this")
        return f"if(JSONHas({doc}{at}), JSONExtractRaw({doc}{at}), NULL)"

    def arrayagg_sql(self, e: exp.ArrayAgg) -> str:
        return self._list(e, None)

    def filter_sql(self, e: exp.Filter) -> str:
        condition = self.sql(e.expression, "this")
        inner = e.this
        if isinstance(inner, exp.ArrayAgg):
            return self._list(inner, condition)
        if isinstance(inner, exp.Count) and not self._in_window:
            return f"toInt64({self.function_fallback_sql(inner)} FILTER (WHERE {condition}))"
        if isinstance(inner, exp.PercentileCont):
            return _quantile(self.sql(inner, "this"), self.sql(inner, "expression"), condition)
        return super().filter_sql(e)

    def _list(self, e: exp.ArrayAgg, condition: str | None) -> str:
        """DuckDB's ``list([DISTINCT] x [ORDER BY k]) [FILTER (c)]``: NULL elements kept, in the order asked."""
        value = e.this
        order = None
        if isinstance(value, exp.Order):
            order = value
            value = value.this
        distinct = isinstance(value, exp.Distinct)
        if distinct:
            value = value.expressions[0]
        keys = [] if order is None else order.expressions
        if any(k.args.get("desc") for k in keys):
            raise TranslationError("list(... ORDER BY ... DESC) has no ClickHouse form here")
        items = [self.sql(value)] + [self.sql(k, "this") for k in keys]
        pair = f"tuple({', '.join(items)})"
        aggregate = "groupUniqArray" if distinct else "groupArray"
        gathered = f"{aggregate}If({pair}, {condition})" if condition else f"{aggregate}({pair})"
        if keys:
            sort_key = "tuple(" + ", ".join(f"x.{i + 2}" for i in range(len(keys))) + ")"
            gathered = f"arraySort(x -> {sort_key}, {gathered})"
        elif distinct:
            gathered = f"arraySort({gathered})"
        return f"arrayMap(x -> x.1, {gathered})"

    def join_sql(self, e: exp.Join) -> str:
        if (e.args.get("kind") or "").upper() in ("SEMI", "ANTI") and not e.side:
            e = e.copy()
            e.set("side", "LEFT")
        return super().join_sql(e)

    def select_sql(self, e: exp.Select) -> str:
        e = e.copy()
        projections, seen = [], set()
        for i, projection in enumerate(e.expressions):
            projection = _as_bool(projection)
            unnamed = not isinstance(projection, (exp.Alias, exp.Column, exp.Star))
            if unnamed and projection.sql() in seen:  # ClickHouse names both alike, and refuses two of a name
                projection = exp.alias_(projection, f"_{i + 1}")
            seen.add(projection.sql())
            projections.append(projection)
        e.set("expressions", projections)
        return super().select_sql(e)


def _as_bool(select: exp.Expression) -> exp.Expression:
    """A projection DuckDB types BOOLEAN, as a ClickHouse Bool (a comparison alone is UInt8 there)."""
    inner = select.this if isinstance(select, exp.Alias) else select
    if not _is_boolean(inner) or isinstance(inner, exp.Boolean):
        return select
    wrapped = exp.func("toBool", inner.copy())
    if isinstance(select, exp.Alias):
        return exp.alias_(wrapped, select.alias, quoted=select.args["alias"].quoted)
    name = inner.alias_or_name if isinstance(inner, exp.Column) else None
    return exp.alias_(wrapped, name) if name else wrapped


class _ClickHouse(ClickHouse):
    class Generator(_Generator):
        TRANSFORMS = {
            **_Generator.TRANSFORMS,
        }
        for _node in (exp.PercentileCont, exp.LogicalOr, exp.LogicalAnd, exp.Count, exp.IntDiv, exp.IgnoreNulls,
                      exp.AnyValue, exp.Length, exp.Concat, exp.Struct, exp.Anonymous, exp.TryCast, exp.Literal,
                      exp.JSONExtractScalar, exp.JSONExtract, exp.Window, exp.ArrayAgg, exp.Filter, exp.CTE, exp.Join,
                      exp.Select):  # fmt: skip
            TRANSFORMS.pop(_node, None)


# --- stars ---------------------------------------------------------------------------------------------------------
# ClickHouse names a column of ``x.*`` in a join ``x.Col`` when another joined relation has a ``Col`` too, where
# DuckDB names it ``Col``; so a qualified star in a join is spelled out, each column aliased by its own name.


def _cte(node: exp.Expression, name: str) -> exp.Expression | None:
    while node is not None:
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        if with_ is not None:
            for cte in with_.expressions:
                if cte.alias == name:
                    return cte.this
        node = node.parent
    return None


def _output_names(query: exp.Expression) -> list[str]:
    """The column names a query (or union) gives, stars resolved through its sources."""
    if isinstance(query, exp.SetOperation):
        return _output_names(query.this)
    if isinstance(query, exp.Subquery):
        return _output_names(query.this)
    if not isinstance(query, exp.Select):
        raise TranslationError(f"cannot tell the columns of {query.sql()[:60]}")
    names = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star):
            for source in _sources(query).values():
                names += _source_names(source)
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            names += _source_names(_sources(query)[projection.table])
        else:
            names.append(projection.alias_or_name)
    excluded = set()
    return [n for n in names if n not in excluded]


def _sources(select: exp.Select) -> dict[str, exp.Expression]:
    found = {}
    relations = [select.args["from_"].this] if select.args.get("from_") else []
    relations += [join.this for join in select.args.get("joins") or []]
    for relation in relations:
        found[relation.alias_or_name] = relation
    return found


def _source_names(source: exp.Expression) -> list[str]:
    from collectors.storage.schema import TABLES

    if isinstance(source, exp.Subquery):
        return _output_names(source.this)
    if isinstance(source, exp.Table):
        defined = _cte(source, source.name)
        if defined is not None:
            return _output_names(defined)
        if source.name in TABLES:
            return [column.name for column in TABLES[source.name]]
    raise TranslationError(f"cannot tell the columns of {source.sql()[:60]}")


def _spell_out_stars(tree: exp.Expression) -> exp.Expression:
    for select in list(tree.find_all(exp.Select)):
        if not select.args.get("joins"):
            continue
        projections = []
        for projection in select.expressions:
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                names = _source_names(_sources(select)[projection.table])
                projections += [exp.alias_(exp.column(n, table=projection.table), n) for n in names]
            else:
                projections.append(projection)
        select.set("expressions", projections)
    return tree


def _unions_by_name(tree: exp.Expression) -> exp.Expression:
    """``UNION ALL BY NAME``: each side projects every name of both, in order of appearance, NULL where it has none."""
    for union in list(tree.find_all(exp.SetOperation)):
        if not union.args.get("by_name"):
            continue
        sides = [union.this, union.expression]
        names = [_output_names(side) for side in sides]
        every = names[0] + [n for n in names[1] if n not in names[0]]
        for side, own in zip(sides, names, strict=True):
            columns = [exp.column(n) if n in own else exp.alias_(exp.Null(), n) for n in every]
            side.replace(exp.select(*columns).from_(exp.Subquery(this=side.copy())))
        union.set("by_name", None)
    return tree


# --- translation -------------------------------------------------------------------------------------------------


def _with_fragments(sql: str) -> tuple[str, dict[str, str]]:
    """The query with each hand-written fragment replaced by a table name standing in for it."""
    for duckdb_text, equivalent in REWRITES.items():
        sql = sql.replace(duckdb_text, equivalent)
    replaced = {}
    for index, (duckdb_text, clickhouse_text) in enumerate(FRAGMENTS.items()):
        if duckdb_text in sql:
            name = _FRAGMENT_TABLE.format(index)
            sql = sql.replace(duckdb_text, f"SELECT * FROM {name}")
            replaced[name] = clickhouse_text
    return sql, replaced


@functools.lru_cache(maxsize=1024)
def _template(sql: str, materialized: bool) -> str:
    """The ClickHouse text of a DuckDB query, parameters still as tokens; its ``AS MATERIALIZED`` CTEs kept as such
    when ``materialized`` (computed once however often the query reads them) or made plain ones."""
    text, fragments = _with_fragments(sql)
    try:
        tree = sqlglot.parse_one(_tokenise_parameters(text), read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise TranslationError(f"cannot read the query: {error}") from error
    tree = _unions_by_name(_spell_out_stars(tree))
    for cte in tree.find_all(exp.CTE):
        if not materialized or not cte.args.get("materialized"):
            cte.set("materialized", None)
    out = tree.sql(dialect=_ClickHouse, unsupported_level=sqlglot.ErrorLevel.RAISE)
    for name, clickhouse_text in fragments.items():
        out = out.replace(f"SELECT * FROM {name}", clickhouse_text.strip())
    return out


@functools.lru_cache(maxsize=4096)
def _bound(sql: str, nulls: frozenset[str], types: tuple[tuple[str, str], ...], materialized: bool) -> str:
    kinds = dict(types)

    def placeholder(match: re.Match) -> str:
        name = match.group(1)
        if name in nulls:
            return "NULL"
        if name not in kinds:
            raise TranslationError(f"no value for parameter {name}")
        return f"{{{_parameter_name(name)}:{kinds[name]}}}"

    return _TOKEN_PATTERN.sub(placeholder, _template(sql, materialized))


def _parameter_name(name: str) -> str:
    return f"p{name}" if name[:1].isdigit() else name


def translate(
    sql: str, parameters: Mapping[str, object] | Sequence[object] | None = None, materialized: bool = False
) -> tuple[str, dict]:
    """The ClickHouse text of a DuckDB query and the values of its ``{name:Type}`` parameters. With
    ``materialized``, a CTE the query marks ``AS MATERIALIZED`` stays so (it needs ``enable_materialized_cte``,
    ClickHouse 25.x and later: collectors/storage/clickhouse/reader.py)."""
    values = parameter_values(parameters)
    nulls = frozenset(name for name, value in values.items() if value is None)
    types = tuple(sorted((name, clickhouse_type(v)) for name, v in values.items() if v is not None))
    text = _bound(sql, nulls, types, materialized)
    bound = {_parameter_name(name): value for name, value in values.items() if value is not None}
    return text, bound
