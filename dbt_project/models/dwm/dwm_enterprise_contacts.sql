{{ config(mysql_indexes=[['enterprise_id']]) }}
-- Which people belong to which enterprise, with the evidence: the CRM's own link, or a WeCom
-- customer whose legal company name matches the enterprise's.
with contacts as (
    select * from {{ ref('dwd_crm__contacts') }}
),

enterprises as (
    select * from {{ ref('dwd_crm__enterprises') }}
),

wecom_contacts as (
    select * from {{ ref('dwd_wecom__external_contacts') }}
),

crm_links as (
    select
        contacts.enterprise_id as enterprise_id,
        'crm_contact' as record_source,
        contacts.contact_id as record_id,
        'crm_link' as evidence
    from contacts
    inner join enterprises on contacts.enterprise_id = enterprises.enterprise_id
),

wecom_links as (
    select distinct
        enterprises.enterprise_id as enterprise_id,
        'wecom_external_contact' as record_source,
        wecom_contacts.external_userid as record_id,
        'company_name' as evidence
    from wecom_contacts
    inner join enterprises on wecom_contacts.corp_name_key = enterprises.enterprise_name_key
),

final as (
    select * from crm_links
    union all
    select * from wecom_links
)

select * from final
