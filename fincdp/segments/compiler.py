"""Compile a segment's rule tree to one SQL query that returns its members' one_ids.

The query is built as sqlglot expressions in DuckDB's dialect with `layer.table` names; user values
enter only as sqlglot literals (quoted and escaped by sqlglot), never by string formatting. A Warehouse
read session runs it on DuckDB or translates it to MySQL/ClickHouse (resources/warehouse_engines.py).

Shape: `select p.one_id from dwm.dwm_person_golden as p where <condition>`. Every condition that needs
another table is `p.<key> in (subquery)`: joins would be shorter, but ClickHouse fills unmatched LEFT
JOIN columns with defaults instead of NULL, and membership tests behave the same on every engine.
Each leaf is two-valued (`coalesce(leaf, false)`), so `not` of a condition on a missing value is
true: a person without an enterprise is in `not: {field: enterprise.industry, op: eq, value: 银行}`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from fincdp.segments.catalog import (CALLS, ENTERPRISE_360, EVENTS, GOLDEN, IDENTITY_MAP, PERSON_360,
                                     PERSON_TAGS, Field)
from fincdp.segments.language import (All, AnyOf, CallCondition, EventCondition, FieldCondition,
                                      LinkCondition, Not, Rule, Segment, TagCondition)


def _date(value: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("date"))


def _literal(value: Any) -> exp.Expression:
    return _date(value) if isinstance(value, dt.date) else exp.convert(value)


def _col(name: str, table: str) -> exp.Column:
    return exp.column(name, table=table)


def _false() -> exp.Expression:
    return exp.false()


def _two_valued(condition: exp.Expression) -> exp.Expression:
    return exp.func("coalesce", condition, _false())


def _in_window(column: exp.Expression, business_date: dt.date, days: int) -> exp.Expression:
    """The `days` days up to and including the business date: (D - days, D]."""
    return exp.and_(exp.GT(this=column, expression=_date(business_date - dt.timedelta(days=days))),
                    exp.LTE(this=column, expression=_date(business_date)))


def _compare(column: exp.Expression, op: str, value: Any, business_date: dt.date) -> exp.Expression:
    if op == "eq":
        return exp.EQ(this=column, expression=_literal(value))
    if op == "ne":
        return exp.NEQ(this=column, expression=_literal(value))
    if op in ("gt", "gte", "lt", "lte"):
        cls = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}[op]
        return cls(this=column, expression=_literal(value))
    if op == "between":
        return exp.Between(this=column, low=_literal(value[0]), high=_literal(value[1]))
    if op == "in":
        return exp.In(this=column, expressions=[_literal(v) for v in value])
    if op == "not_in":
        return exp.not_(exp.In(this=column, expressions=[_literal(v) for v in value]))
    if op == "is_null":
        return exp.Is(this=column, expression=exp.null())
    if op == "not_null":
        return exp.not_(exp.Is(this=column, expression=exp.null()))
    if op == "within_last_days":
        return _in_window(column, business_date, value)
    raise ValueError(f"no SQL for operator {op!r}")  # language.py admits no other


class _Compiler:
    def __init__(self, business_date: dt.date):
        self.day = business_date
        self.tables: set[str] = {GOLDEN}   # what the query reads, for lineage and metadata
        self.activity: dict[str, exp.Expression] = {}   # person figures over CRM contacts, by name

    def rule(self, node: Rule) -> exp.Expression:
        if isinstance(node, All):
            return exp.and_(*(exp.paren(self.rule(c)) for c in node.children))
        if isinstance(node, AnyOf):
            return exp.or_(*(exp.paren(self.rule(c)) for c in node.children))
        if isinstance(node, Not):
            return exp.not_(exp.paren(self.rule(node.child)))
        if isinstance(node, FieldCondition):
            return self.field(node)
        if isinstance(node, EventCondition):
            return self.member_of(self.events(node))
        if isinstance(node, CallCondition):
            return self.member_of(self.calls(node))
        if isinstance(node, TagCondition):
            return self.member_of(self.tags(node))
        if isinstance(node, LinkCondition):
            return self.member_of(self.links(node))
        raise TypeError(f"not a rule node: {node!r}")

    def member_of(self, query: exp.Select, key: str = "one_id", negate: bool = False) -> exp.Expression:
        condition = _two_valued(exp.In(this=_col(key, "p"), query=query.subquery()))
        return exp.not_(condition) if negate else condition

    # --- profile and enterprise attributes -------------------------------------------------------
    def field(self, node: FieldCondition) -> exp.Expression:
        f = node.field
        self.tables.add(f.table)
        if node.op == "not_within_last_days":  # never active counts as "not within"
            return exp.not_(self.field(FieldCondition(f, "within_last_days", node.value)))
        if f.table == GOLDEN:
            column = _col(f.column, "p")
            if f.presence:  # has_mobile: a token is on file
                present = exp.not_(exp.Is(this=column, expression=exp.null()))
                return present if node.value else exp.not_(present)
            return _two_valued(_compare(column, node.op, node.value, self.day))
        if f.table == ENTERPRISE_360:
            query = (exp.select("enterprise_id").from_(exp.to_table(ENTERPRISE_360))
                     .where(exp.not_(exp.Is(this=exp.column("enterprise_id"), expression=exp.null())))
                     .where(_two_valued(_compare(exp.column(f.column), node.op, node.value, self.day))))
            return self.member_of(query, key="crm_enterprise_id")
        return self.person_activity(f, node)

    def person_activity(self, f: Field, node: FieldCondition) -> exp.Expression:
        """A figure summed (or maxed) over the person's CRM contacts, from one grouped CTE `activity`
        that every such condition of the rule shares. A person without contacts has 0 for sums and
        counts and no date: when that default meets the condition, the person is in unless their
        contacts' figure fails it (`not in` the failing ones)."""
        # Not the column's own name: ClickHouse would read sum(leads) AS leads as an aggregate of itself.
        alias = "v_" + f.name.split(".", 1)[1]
        agg = {"sum": exp.Sum, "max": exp.Max}.get(f.aggregate)
        self.activity[alias] = (exp.Count(this=exp.Star()) if f.aggregate == "count"
                                else exp.func("coalesce", agg(this=exp.column(f.column)), exp.Literal.number(0))
                                if f.aggregate == "sum" else agg(this=exp.column(f.column)))
        condition = _two_valued(_compare(exp.column(alias), node.op, node.value, self.day))
        default = self._default_meets(f, node)
        query = exp.select("one_id").from_("activity").where(exp.not_(condition) if default else condition)
        return self.member_of(query, negate=default)

    def activity_cte(self) -> exp.Select:
        return (exp.select("one_id", *(exp.alias_(e, a) for a, e in sorted(self.activity.items())))
                .from_(exp.to_table(PERSON_360))
                .where(exp.not_(exp.Is(this=exp.column("one_id"), expression=exp.null())))
                .group_by("one_id"))

    @staticmethod
    def _default_meets(f: Field, node: FieldCondition) -> bool:
        """Whether a person with no CRM contact (sum/count 0, no date) meets the condition."""
        if f.type == "date":
            return node.op == "is_null"
        v, op = node.value, node.op
        return {"eq": lambda: v == 0, "ne": lambda: v != 0, "gt": lambda: 0 > v, "gte": lambda: 0 >= v,
                "lt": lambda: 0 < v, "lte": lambda: 0 <= v, "between": lambda: v[0] <= 0 <= v[1],
                "in": lambda: 0 in v, "not_in": lambda: 0 not in v, "is_null": lambda: False,
                "not_null": lambda: True}[op]()

    # --- events, calls, tags, OneID links --------------------------------------------------------
    def events(self, node: EventCondition) -> exp.Select:
        self.tables.add(EVENTS)  # events already resolved to one_ids: no join per rule
        query = (exp.select(_col("one_id", "ev")).from_(exp.to_table(EVENTS).as_("ev"))
                 .where(_in_window(_col("business_date", "ev"), self.day, node.within_days)))
        for column, values in node.filters:
            query = query.where(exp.In(this=_col(column, "ev"), expressions=[exp.Literal.string(v) for v in values]))
        return self._at_least(query, "ev", node.min_count)

    def calls(self, node: CallCondition) -> exp.Select:
        self.tables.update({CALLS, IDENTITY_MAP})
        query = (exp.select(_col("one_id", "m")).from_(exp.to_table(CALLS).as_("c"))
                 .join(exp.to_table(IDENTITY_MAP).as_("m"), join_type="inner", on=exp.and_(
                     exp.EQ(this=_col("record_source", "m"), expression=exp.Literal.string("crm_contact")),
                     exp.EQ(this=_col("record_id", "m"), expression=_col("contact_id", "c"))))
                 .where(_in_window(_col("business_date", "c"), self.day, node.within_days)))
        if node.connected is not None:
            query = query.where(_two_valued(exp.EQ(this=_col("is_connected", "c"),
                                                   expression=exp.convert(node.connected))))
        return self._at_least(query, "m", node.min_count)

    @staticmethod
    def _at_least(query: exp.Select, alias: str, k: int) -> exp.Select:
        query = query.where(exp.not_(exp.Is(this=_col("one_id", alias), expression=exp.null())))
        if k <= 1:
            return query  # `in` needs no distinct: the semi-join ignores repeats
        return query.group_by(_col("one_id", alias)).having(
            exp.GTE(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(k)))

    def tags(self, node: TagCondition) -> exp.Select:
        self.tables.add(PERSON_TAGS)
        query = exp.select("one_id").from_(exp.to_table(PERSON_TAGS))
        for column, value in (("tag_name", node.name), ("group_name", node.group), ("tag_id", node.tag_id)):
            if value is not None:
                query = query.where(exp.EQ(this=exp.column(column), expression=exp.Literal.string(value)))
        return query

    def links(self, node: LinkCondition) -> exp.Select:
        self.tables.add(IDENTITY_MAP)
        query = (exp.select("one_id").from_(exp.to_table(IDENTITY_MAP))
                 .where(exp.EQ(this=exp.column("entity_type"), expression=exp.Literal.string("person")))
                 .where(exp.EQ(this=exp.column("record_source"), expression=exp.Literal.string(node.source)))
                 .where(exp.not_(exp.Is(this=exp.column("one_id"), expression=exp.null()))))
        if node.min_count <= 1:
            return query
        return query.group_by("one_id").having(
            exp.GTE(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(node.min_count)))


class Compiled:
    """A segment's member query for one business date."""

    def __init__(self, segment: Segment, business_date: dt.date, query: exp.Select, tables: set[str]):
        self.segment = segment
        self.business_date = business_date
        self.query = query
        self.tables = sorted(tables)

    @property
    def sql(self) -> str:
        """DuckDB SQL with `layer.table` names: what Warehouse read sessions take."""
        return self.query.sql(dialect="duckdb")

    def sql_for(self, engine: str, prefix: str = "") -> str:
        """The SQL the engine runs (MySQL/ClickHouse: translated, layers as `<prefix><layer>` databases)."""
        if engine == "duckdb":
            return self.query.sql(dialect="duckdb", pretty=True)
        from resources.warehouse_engines import translate

        import sqlglot
        return sqlglot.transpile(translate(self.sql, [], prefix, engine), read=engine, write=engine, pretty=True)[0]


def compile_segment(segment: Segment, business_date: dt.date) -> Compiled:
    c = _Compiler(business_date)
    condition = c.rule(segment.rule)
    query = exp.select(_col("one_id", "p")).from_(exp.to_table(GOLDEN).as_("p")).where(condition)
    if c.activity:
        query = query.with_("activity", as_=c.activity_cte())
    return Compiled(segment, business_date, query, c.tables)
