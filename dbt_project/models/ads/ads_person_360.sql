-- The base person profile consumers read: who, where they work, how engaged, and the OneID each CRM
-- contact resolved to (one person may have several CRM contacts; golden records come next).
with contacts as (
    select * from {{ ref('dwd_crm__contacts') }}
),

activity as (
    select * from {{ ref('dws_contacts') }}
),

enterprises as (
    select * from {{ ref('dwd_crm__enterprises') }}
),

identities as (
    select record_id, one_id from {{ source('oneid', 'identity_map') }} where record_source = 'crm_contact'
),

final as (
    select
        contacts.contact_id as contact_id,
        identities.one_id as one_id,
        contacts.contact_name as contact_name,
        contacts.title as title,
        contacts.gender as gender,
        contacts.enterprise_id as enterprise_id,
        enterprises.enterprise_name as enterprise_name,
        contacts.mobile_token is not null as has_mobile,
        contacts.email_token is not null as has_email,
        activity.calls_7d as calls_7d,
        activity.calls_30d as calls_30d,
        activity.events_7d as events_7d,
        activity.events_30d as events_30d,
        activity.calls_all as calls_all,
        activity.events_all as events_all,
        activity.last_active_on as last_active_on,
        activity.leads as leads,
        activity.converted_leads as converted_leads,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from contacts
    left join activity on contacts.contact_id = activity.contact_id
    left join enterprises on contacts.enterprise_id = enterprises.enterprise_id
    left join identities on contacts.contact_id = identities.record_id
)

select * from final
