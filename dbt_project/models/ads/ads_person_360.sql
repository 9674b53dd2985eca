-- The base person profile consumers read: who, where they work, how engaged. Identity resolution
-- (OneID) will replace the CRM contact grain with the person grain.
with contacts as (
    select * from {{ ref('dwd_crm__contacts') }}
),

activity as (
    select * from {{ ref('dws_contacts') }}
),

enterprises as (
    select * from {{ ref('dwd_crm__enterprises') }}
),

final as (
    select
        contacts.contact_id,
        contacts.contact_name,
        contacts.title,
        contacts.gender,
        contacts.enterprise_id,
        enterprises.enterprise_name,
        contacts.mobile_token is not null as has_mobile,
        contacts.email_token is not null as has_email,
        activity.calls_7d,
        activity.calls_30d,
        activity.events_7d,
        activity.events_30d,
        activity.calls_all,
        activity.events_all,
        activity.last_active_on,
        activity.leads,
        activity.converted_leads,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from contacts
    left join activity on contacts.contact_id = activity.contact_id
    left join enterprises on contacts.enterprise_id = enterprises.enterprise_id
)

select * from final
