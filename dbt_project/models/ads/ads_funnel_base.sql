-- Lead -> opportunity -> win, one row per lead: the base for funnel and conversion analysis.
with leads as (
    select * from {{ ref('dwd_crm__leads') }}
),

opportunities as (
    select * from {{ ref('dwd_crm__opportunities') }}
),

per_lead as (
    select
        lead_id,
        count(*) as opportunities,
        max(case when is_won then 1 else 0 end) as has_won,
        max(case when stage = 'lost' then 1 else 0 end) as has_lost,
        sum(case when is_won then amount else 0 end) as won_amount,
        min(created_at) as first_opportunity_at,
        max(case when is_won then close_date end) as won_on
    from opportunities
    group by lead_id
),

final as (
    select
        leads.lead_id as lead_id,
        leads.contact_id as contact_id,
        leads.enterprise_id as enterprise_id,
        leads.channel as channel,
        leads.lead_status as lead_status,
        leads.owner_userid as owner_userid,
        leads.created_at as lead_created_at,
        coalesce(per_lead.opportunities, 0) > 0 as reached_opportunity,
        coalesce(per_lead.has_won, 0) = 1 as reached_win,
        coalesce(per_lead.has_lost, 0) = 1 as was_lost,
        coalesce(per_lead.won_amount, 0) as won_amount,
        per_lead.first_opportunity_at as first_opportunity_at,
        per_lead.won_on as won_on
    from leads
    left join per_lead on leads.lead_id = per_lead.lead_id
)

select * from final
