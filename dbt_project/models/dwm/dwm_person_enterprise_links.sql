{{ config(mysql_indexes=[['person_one_id'], ['enterprise_one_id']]) }}
-- Person -> enterprise links at the OneID grain: the record-level links of dwm_enterprise_contacts
-- (the CRM's own link, or a WeCom customer's legal company name), lifted to both identities. A person
-- may work for several enterprises; link_rank 1 is the primary one (a CRM link first, then the one
-- most records support, then the oldest identity).
with record_links as (
    select * from {{ ref('dwm_enterprise_contacts') }}
),

identities as (
    select entity_type, record_source, record_id, one_id from {{ source('oneid', 'identity_map') }}
),

links as (
    select
        people.one_id as person_one_id,
        enterprises.one_id as enterprise_one_id,
        case when record_links.evidence = 'crm_link' then 1 else 2 end as evidence_rank
    from record_links
    inner join identities people
        on people.entity_type = 'person'
        and people.record_source = record_links.record_source
        and people.record_id = record_links.record_id
    inner join identities enterprises
        on enterprises.entity_type = 'enterprise'
        and enterprises.record_source = 'crm_enterprise'
        and enterprises.record_id = record_links.enterprise_id
),

grouped as (
    select
        person_one_id,
        enterprise_one_id,
        count(*) as records,
        min(evidence_rank) as evidence_rank
    from links
    group by person_one_id, enterprise_one_id
),

final as (
    select
        person_one_id,
        enterprise_one_id,
        records,
        case when evidence_rank = 1 then 'crm_link' else 'company_name' end as evidence,
        row_number() over (
            partition by person_one_id order by evidence_rank, records desc, enterprise_one_id
        ) as link_rank,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from grouped
)

select * from final
