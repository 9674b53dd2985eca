{{ config(mysql_indexes=[['enterprise_id']]) }}
-- One row per current CRM enterprise: people, pipeline and activity up to the business date.
with enterprises as (
    select * from {{ ref('dwd_crm__enterprises') }}
),

contacts as (
    select * from {{ ref('dws_contacts') }}
),

links as (
    select * from {{ ref('dwm_enterprise_contacts') }}
),

opportunities as (
    select * from {{ ref('dwd_crm__opportunities') }}
),

people as (
    select
        enterprise_id,
        sum(case when record_source = 'crm_contact' then 1 else 0 end) as crm_contacts,
        sum(case when record_source = 'wecom_external_contact' then 1 else 0 end) as wecom_contacts
    from links
    group by enterprise_id
),

activity as (
    select
        enterprise_id,
        sum(calls_7d) as calls_7d,
        sum(calls_30d) as calls_30d,
        sum(events_30d) as events_30d,
        max(last_active_on) as last_active_on
    from contacts
    group by enterprise_id
),

pipeline as (
    select
        enterprise_id,
        sum(case when not is_closed then 1 else 0 end) as open_opportunities,
        sum(case when not is_closed then amount else 0 end) as open_pipeline_amount,
        sum(case when is_won then 1 else 0 end) as won_opportunities,
        sum(case when is_won then amount else 0 end) as won_amount
    from opportunities
    group by enterprise_id
),

final as (
    select
        enterprises.enterprise_id as enterprise_id,
        enterprises.enterprise_name as enterprise_name,
        enterprises.credit_code as credit_code,
        enterprises.industry as industry,
        enterprises.province as province,
        enterprises.city as city,
        coalesce(people.crm_contacts, 0) as crm_contacts,
        coalesce(people.wecom_contacts, 0) as wecom_contacts,
        coalesce(activity.calls_7d, 0) as calls_7d,
        coalesce(activity.calls_30d, 0) as calls_30d,
        coalesce(activity.events_30d, 0) as events_30d,
        activity.last_active_on as last_active_on,
        coalesce(pipeline.open_opportunities, 0) as open_opportunities,
        coalesce(pipeline.open_pipeline_amount, 0) as open_pipeline_amount,
        coalesce(pipeline.won_opportunities, 0) as won_opportunities,
        coalesce(pipeline.won_amount, 0) as won_amount
    from enterprises
    left join people on enterprises.enterprise_id = people.enterprise_id
    left join activity on enterprises.enterprise_id = activity.enterprise_id
    left join pipeline on enterprises.enterprise_id = pipeline.enterprise_id
)

select * from final
