{{ config(mysql_indexes=[['one_id'], ['business_date']]) }}
-- Web/app events with the person OneID they resolved to: what segment rules on events read
-- (segments/, docs/segments.md), one join per build instead of one per rule and run. Rebuilt whole
-- each day, so merges and splits of identities reach old events too. Events OneID could not tie to
-- a person (no phone or email token) are left out.
with events as (
    select * from {{ ref('dwd_sdk__events') }}
),

identities as (
    select record_id, one_id
    from {{ source('oneid', 'identity_map') }}
    where record_source = 'sdk_event'
),

final as (
    select
        identities.one_id as one_id,
        events.event_id as event_id,
        events.event_type as event_type,
        events.event_domain as event_domain,
        events.event_action as event_action,
        events.event_object as event_object,
        events.event_source as event_source,
        events.business_date as business_date
    from events
    inner join identities on events.event_id = identities.record_id
)

-- In date order: windows of recent days then read few blocks (DuckDB zone maps, ClickHouse parts).
select * from final
order by business_date
