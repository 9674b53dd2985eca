{{ config(mysql_indexes=[['contact_id']]) }}
-- One row per current CRM contact: activity over 1, 7, 30 days and all time up to the business date.
with contacts as (
    select * from {{ ref('dwd_crm__contacts') }}
),

activity as (
    select * from {{ ref('dwm_contact_day_activity') }}
),

leads as (
    select * from {{ ref('dwd_crm__leads') }}
),

windows as (
    select
        contact_id,
        {% for days in [1, 7, 30] %}
        sum(case when activity_date > {{ days_before(var('business_date'), days) }} then calls else 0 end) as calls_{{ days }}d,
        sum(case when activity_date > {{ days_before(var('business_date'), days) }} then events else 0 end) as events_{{ days }}d,
        {% endfor %}
        sum(calls) as calls_all,
        sum(connected_calls) as connected_calls_all,
        sum(events) as events_all,
        max(activity_date) as last_active_on
    from activity
    where activity_date <= cast('{{ var("business_date") }}' as date)
    group by contact_id
),

lead_counts as (
    select contact_id, count(*) as leads, sum(case when lead_status = 'converted' then 1 else 0 end) as converted_leads
    from leads
    group by contact_id
),

final as (
    select
        contacts.contact_id as contact_id,
        contacts.enterprise_id as enterprise_id,
        {% for days in [1, 7, 30] %}
        coalesce(windows.calls_{{ days }}d, 0) as calls_{{ days }}d,
        coalesce(windows.events_{{ days }}d, 0) as events_{{ days }}d,
        {% endfor %}
        coalesce(windows.calls_all, 0) as calls_all,
        coalesce(windows.connected_calls_all, 0) as connected_calls_all,
        coalesce(windows.events_all, 0) as events_all,
        windows.last_active_on as last_active_on,
        coalesce(lead_counts.leads, 0) as leads,
        coalesce(lead_counts.converted_leads, 0) as converted_leads
    from contacts
    left join windows on contacts.contact_id = windows.contact_id
    left join lead_counts on contacts.contact_id = lead_counts.contact_id
)

select * from final
