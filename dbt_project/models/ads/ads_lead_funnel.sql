-- Lead -> opportunity -> win per month of lead creation (UTC), org unit (the lead owner's WeCom main
-- department) and channel, with a '(all)' x '(all)' row per month: counts, conversion rates and median
-- days between the stages.
with funnel as (
    select * from {{ ref('ads_funnel_base') }}
),

members as (
    select * from {{ ref('dwd_wecom__members') }}
),

departments as (
    select * from {{ ref('dwd_wecom__departments') }}
),

leads as (
    select
        funnel.lead_id as lead_id,
        {{ year_month('funnel.lead_created_at') }} as period,
        coalesce(departments.department_name, '(unassigned)') as org_unit,
        coalesce(funnel.channel, '(unknown)') as channel,
        case when funnel.reached_opportunity then 1 else 0 end as is_opportunity,
        case when funnel.reached_win then 1 else 0 end as is_win,
        funnel.won_amount as won_amount,
        {{ days_between('funnel.lead_created_at', 'funnel.first_opportunity_at') }} as days_to_opportunity,
        {{ days_between('funnel.first_opportunity_at', 'funnel.won_on') }} as days_to_win
    from funnel
    left join members on funnel.owner_userid = members.userid
    left join departments on members.main_department_id = departments.department_id
),

-- Each lead counts in its own cell and in its month's total.
cells as (
    select period, org_unit, channel, lead_id, is_opportunity, is_win, won_amount,
        days_to_opportunity, days_to_win
    from leads
    union all
    select period, '(all)' as org_unit, '(all)' as channel, lead_id, is_opportunity, is_win, won_amount,
        days_to_opportunity, days_to_win
    from leads
),

counts as (
    select
        period,
        org_unit,
        channel,
        count(*) as leads,
        sum(is_opportunity) as opportunities,
        sum(is_win) as wins,
        sum(won_amount) as won_amount
    from cells
    group by period, org_unit, channel
),

median_to_opportunity as (
    {{ median_by('select * from cells', 'days_to_opportunity', ['period', 'org_unit', 'channel'],
                 'median_days_to_opportunity') }}
),

median_to_win as (
    {{ median_by('select * from cells', 'days_to_win', ['period', 'org_unit', 'channel'], 'median_days_to_win') }}
),

final as (
    select
        counts.period as period,
        counts.org_unit as org_unit,
        counts.channel as channel,
        counts.leads as leads,
        counts.opportunities as opportunities,
        counts.wins as wins,
        counts.won_amount as won_amount,
        counts.opportunities * 1e0 / counts.leads as lead_to_opportunity_rate,
        counts.wins * 1e0 / nullif(counts.opportunities, 0) as opportunity_to_win_rate,
        counts.wins * 1e0 / counts.leads as lead_to_win_rate,
        median_to_opportunity.median_days_to_opportunity as median_days_to_opportunity,
        median_to_win.median_days_to_win as median_days_to_win,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from counts
    left join median_to_opportunity
        on counts.period = median_to_opportunity.period
        and counts.org_unit = median_to_opportunity.org_unit
        and counts.channel = median_to_opportunity.channel
    left join median_to_win
        on counts.period = median_to_win.period
        and counts.org_unit = median_to_win.org_unit
        and counts.channel = median_to_win.channel
)

select * from final
