-- The golden record of each person OneID: every attribute from the most trusted source that has it
-- (CRM contact, then dropped contact lists, then WeCom), and within a source the most recent value.
-- Personal data stays as tokens; ciphertexts are taken from the CRM record that supplied the token.
{%- set attributes = ['person_name', 'title', 'mobile_token', 'email_token', 'company_name', 'crm_enterprise_id'] %}
with identities as (
    select record_source, record_id, one_id
    from {{ source('oneid', 'identity_map') }}
    where entity_type = 'person'
),

crm as (
    select * from {{ ref('dwd_crm__contacts') }}
),

files as (
    select * from {{ ref('dwd_file__contacts') }}
),

wecom as (
    select * from {{ ref('dwd_wecom__external_contacts') }}
),

candidates as (
    select identities.one_id as one_id, 1 as source_rank, 'crm_contact' as record_source,
           crm.contact_id as record_id, {{ as_timestamp('crm.updated_at') }} as observed_at,
           crm.contact_name as person_name, crm.title as title, crm.mobile_token as mobile_token,
           crm.email_token as email_token, {{ null_string() }} as company_name,
           crm.enterprise_id as crm_enterprise_id
    from crm
    join identities on identities.record_source = 'crm_contact' and identities.record_id = crm.contact_id
    union all
    select identities.one_id, 2, 'file_contact', files.file_contact_id,
           {{ as_timestamp('files.signed_up_at') }},
           files.contact_name, files.title, files.mobile_token, files.email_token, files.company,
           {{ null_string() }}
    from files
    join identities on identities.record_source = 'file_contact' and identities.record_id = files.file_contact_id
    union all
    select identities.one_id, 3, 'wecom_external_contact', wecom.external_userid,
           {{ as_timestamp('wecom.followed_at') }},
           wecom.contact_name, wecom.position, {{ null_string() }},
           {{ null_string() }}, wecom.corp_full_name, {{ null_string() }}
    from wecom
    join identities on identities.record_source = 'wecom_external_contact'
        and identities.record_id = wecom.external_userid
),
{{ survivor_ctes(attributes, 'source_rank, observed_at desc, record_id', source_column='record_source') }}
people as (
    select one_id, count(*) as source_records, min(source_rank) as best_source_rank
    from candidates
    group by one_id
),

final as (
    select
        people.one_id as one_id,
        people.source_records as source_records,
        {%- for attribute in attributes %}
        {{ attribute }}_survivor.{{ attribute }} as {{ attribute }},
        {{ attribute }}_survivor.{{ attribute }}_source as {{ attribute }}_source,
        {%- endfor %}
        cast('{{ var("business_date") }}' as date) as as_of_date
    from people
    {%- for attribute in attributes %}
    left join {{ attribute }}_survivor on people.one_id = {{ attribute }}_survivor.one_id
    {%- endfor %}
)

select * from final
