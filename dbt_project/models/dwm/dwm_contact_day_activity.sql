{{ config(mysql_indexes=[['contact_id', 'activity_date']]) }}
-- Per CRM contact and day: calls and matched web/app events (matched on the phone or email token
-- until OneID assigns identities).
with calls as (
    select * from {{ ref('dwd_crm__calls') }}
),

events as (
    select * from {{ ref('dwd_sdk__events') }}
),

contacts as (
    select * from {{ ref('dwd_crm__contacts') }}
),

call_days as (
    select
        contact_id,
        business_date as activity_date,
        count(*) as calls,
        sum(case when is_connected then 1 else 0 end) as connected_calls,
        sum(coalesce(duration_s, 0)) as call_seconds
    from calls
    where contact_id is not null
    group by contact_id, business_date
),

event_matches as (
    select contacts.contact_id, events.business_date, events.event_id
    from events
    inner join contacts on events.payload_phone_token = contacts.mobile_token
    union distinct
    select contacts.contact_id, events.business_date, events.event_id
    from events
    inner join contacts on events.payload_email_token = contacts.email_token
),

event_days as (
    select contact_id, business_date as activity_date, count(distinct event_id) as events
    from event_matches
    group by contact_id, business_date
),

days as (
    select contact_id, activity_date from call_days
    union distinct
    select contact_id, activity_date from event_days
),

final as (
    -- Both sides joined onto their union of keys: MySQL has no full outer join.
    select
        days.contact_id as contact_id,
        days.activity_date as activity_date,
        coalesce(call_days.calls, 0) as calls,
        coalesce(call_days.connected_calls, 0) as connected_calls,
        coalesce(call_days.call_seconds, 0) as call_seconds,
        coalesce(event_days.events, 0) as events
    from days
    left join call_days
        on days.contact_id = call_days.contact_id
        and days.activity_date = call_days.activity_date
    left join event_days
        on days.contact_id = event_days.contact_id
        and days.activity_date = event_days.activity_date
)

select * from final
