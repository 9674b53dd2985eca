{{ config(mysql_indexes=[['one_id']]) }}
-- The golden record of each enterprise OneID: every attribute from the most recently updated CRM
-- enterprise record that has it (the CRM is the only enterprise source today), with the people linked.
{%- set attributes = ['enterprise_name', 'credit_code', 'industry', 'province', 'city', 'legal_representative',
                      'registered_capital'] %}
with identities as (
    select record_id, one_id
    from {{ source('oneid', 'identity_map') }}
    where entity_type = 'enterprise' and record_source = 'crm_enterprise'
),

enterprises as (
    select * from {{ ref('dwd_crm__enterprises') }}
),

candidates as (
    select identities.one_id as one_id, enterprises.enterprise_id as record_id,
           {{ as_timestamp('enterprises.updated_at') }} as observed_at,
           {%- for attribute in attributes %}
           enterprises.{{ attribute }} as {{ attribute }}{{ ',' if not loop.last }}
           {%- endfor %}
    from enterprises
    inner join identities on identities.record_id = enterprises.enterprise_id
),
{{ survivor_ctes(attributes, 'observed_at desc, record_id') }}
companies as (
    select one_id, count(*) as source_records, min(record_id) as crm_enterprise_id
    from candidates
    group by one_id
),

people as (
    select enterprise_one_id, count(*) as people, sum(case when link_rank = 1 then 1 else 0 end) as primary_people
    from {{ ref('dwm_person_enterprise_links') }}
    group by enterprise_one_id
),

final as (
    select
        companies.one_id as one_id,
        companies.source_records as source_records,
        companies.crm_enterprise_id as crm_enterprise_id,
        {%- for attribute in attributes %}
        {{ attribute }}_survivor.{{ attribute }} as {{ attribute }},
        {%- endfor %}
        coalesce(people.people, 0) as people,
        coalesce(people.primary_people, 0) as primary_people,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from companies
    {%- for attribute in attributes %}
    left join {{ attribute }}_survivor on companies.one_id = {{ attribute }}_survivor.one_id
    {%- endfor %}
    left join people on companies.one_id = people.enterprise_one_id
)

select * from final
