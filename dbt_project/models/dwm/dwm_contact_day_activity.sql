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
    union
    select contacts.contact_id, events.business_date, events.event_id
    from events
    inner join contacts on events.payload_email_token = contacts.email_token
),

event_days as (
    select contact_id, business_date as activity_date, count(distinct event_id) as events
    from event_matches
    group by contact_id, business_date
),

final as (
    select
        coalesce(call_days.contact_id, event_days.contact_id) as contact_id,
        coalesce(call_days.activity_date, event_days.activity_date) as activity_date,
        coalesce(call_days.calls, 0) as calls,
        coalesce(call_days.connected_calls, 0) as connected_calls,
        coalesce(call_days.call_seconds, 0) as call_seconds,
        coalesce(event_days.events, 0) as events
    from call_days
    full outer join event_days
        on call_days.contact_id = event_days.contact_id
        and call_days.activity_date = event_days.activity_date
)

select * from final
