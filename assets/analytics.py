"""Analytics assets (ADS, Python): custom event funnels, paths, attribution, customer value (RFM,
historical and predictive CLV) and lifecycle stages, per tenant and business date.

They read DWD/ADS/OneID through `Warehouse.query()` (any engine), compute in pandas with
fincdp.analytics (pure, tested functions) under the tenant's analytics.yaml settings, and replace
their `ads.*` tables whole. The lead -> opportunity -> win funnel is SQL: dbt model ads_lead_funnel.
Metadata: small Markdown tables and charts for the Dagster UI. Identifiers only; no personal data is read.
"""
import warnings
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from assets.partitions import tenant_day, tenant_day_of
from fincdp.analytics import attribution as attr
from fincdp.analytics.config import AnalyticsSettings, load_analytics
from fincdp.analytics.events import event_funnel, top_paths
from fincdp.analytics.lifecycle import stages
from fincdp.analytics.value import clv_inputs, historical, predict_clv, rfm
from fincdp.oneid.identifiers import payload_device_ids
from fincdp.tenants import current_tenants
from resources.warehouse import Warehouse

GROUP = "analytics"
EVENTS_DEPS = [dg.AssetKey(["dwd", "dwd_sdk__events"]), dg.AssetKey(["oneid", "identities"])]


def settings_for(tenant_id: str) -> AnalyticsSettings:
    return load_analytics(tenant_ids=current_tenants().ids).for_tenant(tenant_id)


# ---- reading -------------------------------------------------------------------------------------

def _utc(values: pd.Series) -> pd.Series:
    """Engines return UTC timestamps with a zone (DuckDB, ClickHouse) or naive UTC (MySQL)."""
    s = pd.to_datetime(values)
    return s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")


def _frame(q, sql: str) -> pd.DataFrame:
    return q.arrow(sql).to_pandas()


def _day(values: pd.Series) -> pd.Series:
    """Dates or timestamps (zoned or naive UTC) as naive midnight timestamps of their UTC date."""
    s = pd.to_datetime(values)
    if s.dt.tz is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.dt.normalize()


def read_events(q, business_date: date, lookback_days: int, event_types: list[str] | None = None) -> pd.DataFrame:
    """Events of the lookback window with their actor: the OneID of the person an event resolved to,
    else its device id (from the payload, which holds no personal data once landed). event_types: only
    these (filtered in the engine: at 10M events, reading every payload is most of a funnel's time)."""
    since = (business_date - timedelta(days=lookback_days)).isoformat()
    only = f" and e.event_type in ({', '.join('?' for _ in event_types)})" if event_types else ""
    t = q.arrow(
        "select e.event_id as event_id, e.occurred_at as occurred_at, e.event_type as event_type, "
        "e.event_source as event_source, m.one_id as one_id, e.payload as payload "
        "from dwd.dwd_sdk__events as e left join oneid.identity_map as m "
        "on m.record_source = 'sdk_event' and m.record_id = e.event_id "
        f"where e.business_date >= cast('{since}' as date) "
        f"and e.business_date <= cast('{business_date.isoformat()}' as date){only}", list(event_types or []) or None)
    device = pc.binary_join_element_wise("device:", payload_device_ids(t["payload"]), "")
    # An engine returns a column of nulls (no rows, or no event resolved) as Arrow's null type.
    actor = pc.coalesce(pc.cast(t["one_id"], pa.string()), pc.cast(device, pa.string()))
    df = t.drop_columns(["payload", "one_id"]).append_column("actor", actor).to_pandas()
    df["occurred_at"] = _utc(df["occurred_at"])
    return df


# ---- writing -------------------------------------------------------------------------------------

def _write(warehouse: Warehouse, tenant, table: str, df: pd.DataFrame, schema: pa.Schema) -> int:
    data = pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    with warehouse.writer(tenant) as w:
        return w.replace_table(table, data)


def md_table(df: pd.DataFrame, columns: dict[str, str], limit: int = 30) -> str:
    """A Markdown table of `columns` ({column: header}); floats to 3 decimals, rates as percentages
    when the header ends in '%'."""
    if not len(df):
        return "_no rows_"
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for _, row in df.head(limit).iterrows():
        cells = []
        for col, head in columns.items():
            v = row[col]
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                cells.append("")
            elif head.endswith("%"):
                cells.append(f"{100 * float(v):.1f}")
            elif isinstance(v, (float, np.floating)):
                cells.append(f"{float(v):,.3f}".rstrip("0").rstrip("."))
            else:
                cells.append(str(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    if len(df) > limit:
        lines.append(f"\n_{len(df) - limit} more rows in the table_")
    return "\n".join(lines)


def chart_md(spec: dict, alt_text: str) -> str:
    """A Vega-Lite chart as an inline PNG for Markdown metadata (vl-convert renders offline, no browser).
    Labels stay ASCII: Chinese glyphs need fonts-wqy-microhei, which this image does not have. A chart
    that fails to render is left out rather than shown broken; the table beside it carries the numbers."""
    try:
        import base64

        import vl_convert

        png = vl_convert.vegalite_to_png(spec, scale=1)
    except Exception as exc:  # noqa: BLE001 (the chart is an extra; the asset must not fail for it)
        dg.get_dagster_logger().warning(f"chart {alt_text!r} left out: {exc}")
        return ""
    return f"![{alt_text}](data:image/png;base64,{base64.b64encode(png).decode()})\n\n"


def _bars(values: list[dict], x: str, y: str, color: str | None = None, title: str = "") -> dict:
    enc = {"x": {"field": x, "type": "quantitative"}, "y": {"field": y, "type": "nominal", "sort": None}}
    if color:
        enc["color"] = {"field": color, "type": "nominal"}
        enc["yOffset"] = {"field": color, "type": "nominal"}
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title, "width": 360,
            "data": {"values": values}, "mark": "bar", "encoding": enc}


_DAY = pa.date32()
_TS = pa.timestamp("us", tz="UTC")

FUNNELS_SCHEMA = pa.schema([("funnel", pa.string()), ("step_no", pa.int64()), ("step", pa.string()),
                            ("actors", pa.int64()), ("rate_from_previous", pa.float64()),
                            ("rate_from_first", pa.float64()), ("median_hours_from_previous", pa.float64()),
                            ("window_days", pa.float64()), ("as_of_date", _DAY)])


@dg.asset(key=["ads", "ads_event_funnels"], group_name=GROUP, partitions_def=tenant_day, deps=EVENTS_DEPS,
          kinds={"python"}, description="Custom funnels over web/app events (analytics.yaml `funnels`): "
          "actors reaching each ordered step within the window, conversion rates, median hours between steps.")
def ads_event_funnels(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    day = tenant_day_of(context)
    cfg = settings_for(day.tenant.id)
    with warehouse.query(day.tenant) as q:
        events = read_events(q, day.business_date, cfg.events_lookback_days,
                             sorted({step for f in cfg.funnels for step in f.steps}))
    frames = [event_funnel(events, f) for f in cfg.funnels]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FUNNELS_SCHEMA.names[:-1])
    df["as_of_date"] = day.business_date
    n = _write(warehouse, day.tenant, "ads.ads_event_funnels", df, FUNNELS_SCHEMA)
    md = "\n\n".join(f"**{f.name}** (within {f.window_days:g} days)\n\n" + chart_md(_bars(
        [{"step": f"{r.step_no}. {r.step}", "actors": int(r.actors)} for r in df[df["funnel"] == f.name].itertuples()],
        "actors", "step"), f"funnel {f.name}") + md_table(
        df[df["funnel"] == f.name], {"step_no": "#", "step": "step", "actors": "actors",
                                     "rate_from_previous": "from previous %", "rate_from_first": "from first %",
                                     "median_hours_from_previous": "median hours"}) for f in cfg.funnels)
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "funnels": len(cfg.funnels),
                                          "events_read": len(events),
                                          "funnel_table": dg.MetadataValue.md(md or "_no funnels configured_")})


PATHS_SCHEMA = pa.schema([("anchor", pa.string()), ("direction", pa.string()), ("rank", pa.int64()),
                          ("path", pa.string()), ("occurrences", pa.int64()), ("share", pa.float64()),
                          ("as_of_date", _DAY)])


@dg.asset(key=["ads", "ads_event_paths"], group_name=GROUP, partitions_def=tenant_day, deps=EVENTS_DEPS,
          kinds={"python"}, description="Top paths (sequences of event types) before and after each "
          "anchor event of analytics.yaml `paths.anchors`, one count per anchor occurrence.")
def ads_event_paths(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    day = tenant_day_of(context)
    cfg = settings_for(day.tenant.id)
    with warehouse.query(day.tenant) as q:
        events = read_events(q, day.business_date, cfg.events_lookback_days)
    frames = [top_paths(events, anchor, cfg.paths) for anchor in cfg.paths.anchors]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PATHS_SCHEMA.names[:-1])
    df["as_of_date"] = day.business_date
    n = _write(warehouse, day.tenant, "ads.ads_event_paths", df, PATHS_SCHEMA)
    md = "\n\n".join(f"**{d} {a}**\n\n" + md_table(
        df[(df["anchor"] == a) & (df["direction"] == d)], {"rank": "#", "path": "path", "occurrences": "n",
                                                          "share": "share %"}, limit=5)
        for a in cfg.paths.anchors for d in ("before", "after"))
    return dg.MaterializeResult(metadata={"dagster/row_count": n,
                                          "top_paths": dg.MetadataValue.md(md or "_no anchors configured_")})


# ---- attribution ---------------------------------------------------------------------------------

def read_conversions_and_touchpoints(q, business_date: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Conversions (won opportunities at the end of their close date; converted leads when their first
    opportunity opened) and touchpoints (calls, WeCom follows, web/app events), keyed by person OneID."""
    people = _frame(q, "select record_id as contact_id, one_id from oneid.identity_map "
                       "where record_source = 'crm_contact'")
    won = _frame(q, "select o.opportunity_id as conversion_id, l.contact_id as contact_id, o.close_date as close_date, "
                    "o.amount as amount from dwd.dwd_crm__opportunities as o "
                    "inner join dwd.dwd_crm__leads as l on o.lead_id = l.lead_id where o.is_won")
    won = won.merge(people, on="contact_id", how="left")
    won = won.assign(conversion_type="won_opportunity", person_key=won["one_id"].fillna("contact:" + won["contact_id"]),
                     converted_at=_utc(won["close_date"]) + pd.Timedelta(days=1),
                     amount=won["amount"].astype(float).fillna(0.0))
    leads = _frame(q, "select f.lead_id as conversion_id, f.contact_id as contact_id, "
                      "f.first_opportunity_at as first_opportunity_at, l.updated_at as updated_at "
                      "from ads.ads_funnel_base as f inner join dwd.dwd_crm__leads as l on f.lead_id = l.lead_id "
                      "where f.lead_status = 'converted'")
    leads = leads.merge(people, on="contact_id", how="left")
    leads = leads.assign(conversion_type="converted_lead",
                         person_key=leads["one_id"].fillna("contact:" + leads["contact_id"]),
                         converted_at=_utc(leads["first_opportunity_at"]).fillna(_utc(leads["updated_at"])),
                         amount=0.0)
    cols = ["conversion_id", "conversion_type", "person_key", "converted_at", "amount"]
    conversions = pd.concat([won[cols], leads[cols]], ignore_index=True)
    conversions = conversions[conversions["converted_at"] <= pd.Timestamp(business_date + timedelta(days=1), tz="UTC")]

    calls = _frame(q, "select call_id as touchpoint_id, contact_id, started_at as touched_at from dwd.dwd_crm__calls")
    calls = calls.merge(people, on="contact_id", how="left")
    calls = calls.assign(channel="call", person_key=calls["one_id"].fillna("contact:" + calls["contact_id"]))
    follows = _frame(q, "select w.external_userid as external_userid, w.follow_userid as follow_userid, "
                        "w.followed_at as touched_at, m.one_id as person_key "
                        "from dwd.dwd_wecom__external_contacts as w "
                        "inner join oneid.identity_map as m on m.record_source = 'wecom_external_contact' "
                        "and m.record_id = w.external_userid")
    follows = follows.assign(channel="wecom_follow",
                             touchpoint_id="wecom:" + follows["external_userid"] + ":" + follows["follow_userid"])
    events = _frame(q, "select e.event_id as touchpoint_id, e.event_source as channel, e.occurred_at as touched_at, "
                       "m.one_id as person_key from dwd.dwd_sdk__events as e inner join oneid.identity_map as m "
                       "on m.record_source = 'sdk_event' and m.record_id = e.event_id")
    cols = ["touchpoint_id", "person_key", "channel", "touched_at"]
    touch = pd.concat([calls[cols], follows[cols], events[cols]], ignore_index=True)
    touch["touched_at"] = _utc(touch["touched_at"])
    return conversions, touch


CREDITS_SCHEMA = pa.schema([("conversion_id", pa.string()), ("conversion_type", pa.string()),
                            ("person_key", pa.string()), ("converted_at", _TS), ("amount", pa.float64()),
                            ("model", pa.string()), ("touchpoint_id", pa.string()), ("channel", pa.string()),
                            ("touched_at", _TS), ("position", pa.int64()), ("touchpoints", pa.int64()),
                            ("weight", pa.float64()), ("credited_amount", pa.float64()), ("as_of_date", _DAY)])
BY_CHANNEL_SCHEMA = pa.schema([("conversion_type", pa.string()), ("model", pa.string()), ("channel", pa.string()),
                               ("conversions", pa.float64()), ("amount", pa.float64()), ("as_of_date", _DAY)])


@dg.multi_asset(
    specs=[dg.AssetSpec(["ads", "ads_attribution"], group_name=GROUP, kinds={"python"},
                        deps=[*EVENTS_DEPS, dg.AssetKey(["dwd", "dwd_crm__calls"]),
                              dg.AssetKey(["dwd", "dwd_crm__opportunities"]), dg.AssetKey(["ads", "ads_funnel_base"]),
                              dg.AssetKey(["dwd", "dwd_wecom__external_contacts"]),
                              dg.AssetKey(["dwd", "dwd_crm__leads"])],
                        description="Credit of each conversion (won opportunity, converted lead) per touchpoint "
                                    "and model (first/last touch, linear, time decay, position based)."),
           dg.AssetSpec(["ads", "ads_attribution_by_channel"], group_name=GROUP, kinds={"python"},
                        deps=[dg.AssetKey(["ads", "ads_attribution"])],
                        description="Attribution per conversion type, model and channel: conversions and "
                                    "amount credited.")],
    partitions_def=tenant_day)
def ads_attribution(context: dg.AssetExecutionContext, warehouse: Warehouse):
    day = tenant_day_of(context)
    cfg = settings_for(day.tenant.id).attribution
    with warehouse.query(day.tenant) as q:
        conversions, touch = read_conversions_and_touchpoints(q, day.business_date)
    conversions = conversions[conversions["conversion_type"].isin(cfg.conversions)]
    frames = []
    summaries = []
    for kind, conv in conversions.groupby("conversion_type"):
        credits = attr.attribute(conv, touch, cfg)
        frames.append(credits)
        summaries.append(attr.by_channel(credits).assign(conversion_type=kind))
    credits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=attr.CREDIT_COLUMNS)
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(
        columns=BY_CHANNEL_SCHEMA.names[:-1])
    credits["as_of_date"] = day.business_date
    summary["as_of_date"] = day.business_date
    n = _write(warehouse, day.tenant, "ads.ads_attribution", credits, CREDITS_SCHEMA)
    m = _write(warehouse, day.tenant, "ads.ads_attribution_by_channel", summary, BY_CHANNEL_SCHEMA)
    grids = []
    for kind, s in summary.groupby("conversion_type"):
        grid = s.pivot_table(index="channel", columns="model", values="conversions", aggfunc="sum", fill_value=0.0)
        grid = grid.reindex(columns=list(attr.MODELS), fill_value=0.0).reset_index()
        grids.append(f"**{kind}**: conversions credited per channel and model (window {cfg.window_days:g} days, "
                     f"half-life {cfg.half_life_days:g} days)\n\n"
                     + chart_md(_bars([{"channel": r.channel, "model": r.model, "conversions": float(r.conversions)}
                                       for r in s.itertuples()], "conversions", "channel", "model"),
                                f"attribution {kind}")
                     + md_table(grid, {"channel": "channel", **{mod: mod for mod in attr.MODELS}}))
    yield dg.MaterializeResult(asset_key=["ads", "ads_attribution"], metadata={
        "dagster/row_count": n, "conversions": int(conversions["conversion_id"].nunique()),
        "touchpoints_read": len(touch)})
    yield dg.MaterializeResult(asset_key=["ads", "ads_attribution_by_channel"], metadata={
        "dagster/row_count": m, "attribution": dg.MetadataValue.md("\n\n".join(grids) or "_no conversions_")})


# ---- customer value ------------------------------------------------------------------------------

VALUE_SCHEMA = pa.schema([
    ("entity_type", pa.string()), ("customer_id", pa.string()), ("purchases", pa.int64()),
    ("total_amount", pa.float64()), ("mean_amount", pa.float64()), ("first_purchase_on", _DAY),
    ("last_purchase_on", _DAY), ("recency_days", pa.int64()), ("r_score", pa.int64()), ("f_score", pa.int64()),
    ("m_score", pa.int64()), ("rfm_code", pa.string()), ("rfm_segment", pa.string()), ("frequency", pa.int64()),
    ("recency", pa.float64()), ("T", pa.float64()), ("monetary_value", pa.float64()),
    ("expected_purchases", pa.float64()), ("p_alive", pa.float64()), ("expected_value", pa.float64()),
    ("predicted_clv", pa.float64()), ("horizon_days", pa.int64()), ("as_of_date", _DAY)])


def read_transactions(q, business_date: date) -> dict[str, pd.DataFrame]:
    """Won opportunities as purchases (amount on the close date), per enterprise and per person OneID."""
    won = _frame(q, "select o.opportunity_id as opportunity_id, o.enterprise_id as enterprise_id, "
                    "l.contact_id as contact_id, o.close_date as close_date, o.amount as amount "
                    "from dwd.dwd_crm__opportunities as o left join dwd.dwd_crm__leads as l on o.lead_id = l.lead_id "
                    "where o.is_won")
    people = _frame(q, "select record_id as contact_id, one_id from oneid.identity_map "
                       "where record_source = 'crm_contact'")
    won = won.merge(people, on="contact_id", how="left")
    won["purchased_on"] = _day(won["close_date"])
    won["amount"] = won["amount"].astype(float).fillna(0.0)
    won = won[won["purchased_on"] <= pd.Timestamp(business_date)]
    person = won["one_id"].fillna("contact:" + won["contact_id"].fillna(""))
    return {"enterprise": won.assign(customer_id=won["enterprise_id"]).dropna(subset=["customer_id"]),
            "person": won.assign(customer_id=person).loc[won["contact_id"].notna() | won["one_id"].notna()]}


def customer_value(transactions: pd.DataFrame, business_date: date, cfg: AnalyticsSettings):
    hist = rfm(historical(transactions, business_date), cfg.rfm.segments)
    inputs = clv_inputs(transactions, business_date, cfg.clv.period_days)
    predicted, models, why_not = predict_clv(inputs, cfg.clv.horizon_days, cfg.clv.min_customers)
    return hist.merge(predicted, on="customer_id", how="left"), models, why_not


@dg.asset(key=["ads", "ads_customer_value"], group_name=GROUP, partitions_def=tenant_day, kinds={"python"},
          deps=[dg.AssetKey(["dwd", "dwd_crm__opportunities"]), dg.AssetKey(["dwd", "dwd_crm__leads"]),
                dg.AssetKey(["oneid", "identities"])],
          description="Per enterprise and per person: historical value of won deals, RFM scores and segment, "
                      "and predicted CLV over the horizon (BG/NBD + Gamma-Gamma).")
def ads_customer_value(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    day = tenant_day_of(context)
    cfg = settings_for(day.tenant.id)
    with warehouse.query(day.tenant) as q:
        transactions = read_transactions(q, day.business_date)
    frames, meta = [], {}
    for entity_type, tx in transactions.items():
        value, models, why_not = customer_value(tx, day.business_date, cfg)
        frames.append(value.assign(entity_type=entity_type))
        if models:
            bg, gg = models
            meta[f"{entity_type}_bgnbd"] = dg.MetadataValue.json(
                {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b, "p": gg.p, "q": gg.q, "v": gg.v})
        else:
            meta[f"{entity_type}_clv_not_fitted"] = why_not
            context.log.info(f"tenant {day.tenant.id}: {entity_type} CLV not fitted: {why_not}")
        grid = value.pivot_table(index="r_score", columns="f_score", values="customer_id", aggfunc="count",
                                 fill_value=0).reindex(index=range(5, 0, -1), columns=range(1, 6), fill_value=0)
        grid = grid.reset_index().rename(columns={"r_score": "R \\ F"})
        grid.columns = [str(c) for c in grid.columns]
        segments = value.groupby("rfm_segment", as_index=False).agg(
            customers=("customer_id", "count"), total_amount=("total_amount", "sum")).sort_values(
            "total_amount", ascending=False)
        meta[f"{entity_type}_rfm"] = dg.MetadataValue.md(
            f"**{entity_type}s by R (rows) and F (columns) score**\n\n"
            + md_table(grid, {c: c for c in grid.columns}) + "\n\n"
            + md_table(segments, {"rfm_segment": "segment", "customers": "customers", "total_amount": "won amount"}))
    df = pd.concat(frames, ignore_index=True)
    df["horizon_days"] = cfg.clv.horizon_days
    df["as_of_date"] = day.business_date
    for col in ("first_purchase_on", "last_purchase_on"):
        df[col] = pd.to_datetime(df[col]).dt.date
    n = _write(warehouse, day.tenant, "ads.ads_customer_value", df, VALUE_SCHEMA)
    return dg.MaterializeResult(metadata={"dagster/row_count": n, **meta})


# ---- lifecycle -----------------------------------------------------------------------------------

LIFECYCLE_SCHEMA = pa.schema([("contact_id", pa.string()), ("one_id", pa.string()), ("first_seen_on", _DAY),
                              ("last_active_on", _DAY), ("won_deals", pa.int64()), ("stage", pa.string()),
                              ("as_of_date", _DAY)])


@dg.asset(key=["ads", "ads_lifecycle"], group_name=GROUP, partitions_def=tenant_day, kinds={"python"},
          deps=[dg.AssetKey(["ads", "ads_person_360"]), dg.AssetKey(["ads", "ads_funnel_base"]),
                dg.AssetKey(["dwd", "dwd_crm__contacts"])],
          description="Lifecycle stage per CRM contact by analytics.yaml `lifecycle.rules` (first match wins).")
def ads_lifecycle(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    day = tenant_day_of(context)
    cfg = settings_for(day.tenant.id)
    with warehouse.query(day.tenant) as q:
        people = _frame(q, "select p.contact_id as contact_id, p.one_id as one_id, c.created_at as created_at, "
                           "p.last_active_on as last_active_on from ads.ads_person_360 as p "
                           "left join dwd.dwd_crm__contacts as c on p.contact_id = c.contact_id")
        deals = _frame(q, "select contact_id, sum(case when reached_win then 1 else 0 end) as won_deals, "
                          "max(won_on) as last_won_on, "
                          "max(lead_created_at) as last_lead_at from ads.ads_funnel_base "
                          "group by contact_id")
    people = people.merge(deals, on="contact_id", how="left")
    people["first_seen_on"] = _utc(people["created_at"]).dt.date
    # Activity is calls and events (ads_person_360), and also a new lead or a won deal.
    active = pd.concat([_day(people["last_active_on"]), _day(people["last_won_on"]),
                        _day(people["last_lead_at"])], axis=1).max(axis=1)
    people["last_active_on"] = active.dt.date
    people["won_deals"] = people["won_deals"].fillna(0).astype("int64")
    people["stage"] = stages(people, cfg.lifecycle, day.business_date)
    people["as_of_date"] = day.business_date
    n = _write(warehouse, day.tenant, "ads.ads_lifecycle", people, LIFECYCLE_SCHEMA)
    counts = people["stage"].value_counts().reindex([r.stage for r in cfg.lifecycle.rules], fill_value=0)
    table = pd.DataFrame({"stage": counts.index, "contacts": counts.to_numpy(),
                          "share": counts.to_numpy() / max(len(people), 1)})
    return dg.MaterializeResult(metadata={"dagster/row_count": n, "lifecycle": dg.MetadataValue.md(
        md_table(table, {"stage": "stage", "contacts": "contacts", "share": "share %"}))})


# ---- lead funnel (dbt model ads_lead_funnel): a check that also shows it ---------------------------

def lead_funnel_findings(df: pd.DataFrame) -> dict[str, int]:
    """Inconsistencies in ads_lead_funnel rows: stages that grow, rates outside [0, 1], month totals that
    differ from the sum of their cells; and negative stage times, a source problem (an opportunity
    opened before its lead), counted but not failed."""
    cells, totals = df[df["org_unit"] != "(all)"], df[df["org_unit"] == "(all)"].set_index("period")
    count_cols = ["leads", "opportunities", "wins"]
    summed = cells.groupby("period")[count_cols].sum().reindex(totals.index).fillna(-1).astype("int64")
    rates = df[["lead_to_opportunity_rate", "opportunity_to_win_rate", "lead_to_win_rate"]]
    return {
        "stage_counts_growing": int(((df["opportunities"] > df["leads"]) | (df["wins"] > df["opportunities"])).sum()),
        "rates_out_of_range": int(((rates < 0) | (rates > 1)).any(axis=1).sum()),
        "totals_not_matching_cells": int((summed != totals[count_cols].astype("int64")).any(axis=1).sum()),
        "negative_stage_times": int(((df["median_days_to_opportunity"] < 0) | (df["median_days_to_win"] < 0)).sum()),
    }


def _lead_funnel_check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    day = tenant_day_of(context)
    with warehouse.query(day.tenant) as q:
        return lead_funnel_result(_frame(q, "select * from ads.ads_lead_funnel"))


def lead_funnel_result(df: pd.DataFrame) -> dg.AssetCheckResult:
    """The check's verdict and metadata (a chart and a table of the last 12 months) for ads_lead_funnel rows."""
    for col in ("leads", "opportunities", "wins", "won_amount", "lead_to_opportunity_rate", "opportunity_to_win_rate",
                "lead_to_win_rate", "median_days_to_opportunity", "median_days_to_win"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    findings = lead_funnel_findings(df)
    months = df[df["org_unit"] == "(all)"].sort_values("period").tail(12)
    named = (("1 leads", "leads"), ("2 opportunities", "opportunities"), ("3 wins", "wins"))
    stages_long = [{"period": r.period, "stage": stage, "count": int(getattr(r, col))}
                   for r in months.itertuples() for stage, col in named]
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 420, "height": 160,
            "data": {"values": stages_long}, "mark": "bar",
            "encoding": {"x": {"field": "period", "type": "ordinal"}, "xOffset": {"field": "stage"},
                         "y": {"field": "count", "type": "quantitative"},
                         "color": {"field": "stage", "type": "nominal"}}}
    md = (chart_md(spec, "leads, opportunities and wins per month")
          + md_table(months, {"period": "month", "leads": "leads", "opportunities": "opps", "wins": "wins",
                              "lead_to_opportunity_rate": "lead>opp %", "opportunity_to_win_rate": "opp>win %",
                              "median_days_to_opportunity": "median days to opp",
                              "median_days_to_win": "median days to win"}))
    failed = {k: v for k, v in findings.items() if v and k != "negative_stage_times"}
    return dg.AssetCheckResult(
        passed=not failed, severity=dg.AssetCheckSeverity.WARN,
        description=("inconsistent: " + ", ".join(f"{k} {v}" for k, v in failed.items()) if failed else "consistent")
        + (f"; {findings['negative_stage_times']} cells with a negative median stage time (opportunities opened "
           "before their lead in the source)" if findings["negative_stage_times"] else ""),
        metadata={**findings, "months": dg.MetadataValue.md(md)})


with warnings.catch_warnings():
    # partitions_def on a check is a preview feature of Dagster 1.13, used as quality/checks.py does.
    warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec")
    lead_funnel_check = dg.asset_check(
        asset=dg.AssetKey(["ads", "ads_lead_funnel"]), name="lead_funnel_consistent", partitions_def=tenant_day,
        blocking=False, description="ads_lead_funnel: wins <= opportunities <= leads, rates in [0, 1], month totals "
        "equal their cells; shows the last 12 months as a chart and a table.")(_lead_funnel_check)


PYTHON_ASSETS = [ads_event_funnels, ads_event_paths, ads_attribution, ads_customer_value, ads_lifecycle]
ASSETS = [*PYTHON_ASSETS, lead_funnel_check]
