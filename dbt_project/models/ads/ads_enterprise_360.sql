-- The base enterprise profile: identity, people, pipeline and activity.
with enterprises as (
    select * from {{ ref('dws_enterprises') }}
),

final as (
    select
        *,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from enterprises
)

select * from final
