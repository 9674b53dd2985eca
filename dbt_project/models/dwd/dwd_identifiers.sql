-- The long identifier table OneID resolves: one row per (record, identifier). Strong identifiers
-- (credit code, phone, email, ID number, WeCom ids, CRM keys) may merge records on their own; weak
-- ones (employee-typed remark mobiles, company names) only add evidence. Events come in only through
-- the phones and emails in their payloads: OneID takes an event as a person's record only through a
-- strong identifier, so their IP addresses (every event has one: two thirds of this table's rows, and
-- of its build time, at 1M contacts) were never read; they stay in dwd_sdk__events.ip_token.
-- A fixed line (a company switchboard colleagues share, often fewer of them than the hub limit) is
-- evidence, never a person key. Landing flags each phone; the flag belongs to the number, so a token
-- flagged once is weak wherever it appears, event payloads included.
with crm_contacts as (
    select * from {{ ref('dwd_crm__contacts') }}
),

crm_enterprises as (
    select * from {{ ref('dwd_crm__enterprises') }}
),

wecom_contacts as (
    select * from {{ ref('dwd_wecom__external_contacts') }}
),

file_contacts as (
    select * from {{ ref('dwd_file__contacts') }}
),

events as (
    select * from {{ ref('dwd_sdk__events') }}
),

remark_mobiles as (
    {{ unnest_list("select external_userid, follow_userid, remark_mobiles_tokens from " ~ ref('dwd_wecom__external_contacts'),
                   'remark_mobiles_tokens', 'mobile_token', ['external_userid', 'follow_userid']) }}
),

fixed_lines as (
    select mobile_token as token from crm_contacts where mobile_is_mobile = false
    union all
    select mobile_token from file_contacts where mobile_is_mobile = false
),

identifiers as (
    select 'enterprise' as entity_type, 'crm_enterprise' as record_source, enterprise_id as record_id,
           'credit_code' as identifier_type, {{ long_text('credit_code') }} as identifier, 'strong' as strength
    from crm_enterprises where credit_code is not null
    union all
    select 'enterprise', 'crm_enterprise', enterprise_id, 'company_name', enterprise_name_key, 'weak'
    from crm_enterprises where enterprise_name_key is not null
    union all
    select 'person', 'crm_contact', contact_id, 'crm_id', contact_id, 'strong' from crm_contacts
    union all
    select 'person', 'crm_contact', contact_id, 'phone', mobile_token,
           case when mobile_is_mobile = false then 'weak' else 'strong' end
    from crm_contacts where mobile_token is not null
    union all
    select 'person', 'crm_contact', contact_id, 'email', email_token, 'strong'
    from crm_contacts where email_token is not null
    union all
    select 'person', 'crm_contact', contact_id, 'id_number', id_number_token, 'strong'
    from crm_contacts where id_number_token is not null
    union all
    select 'person', 'wecom_external_contact', external_userid, 'wecom_external_userid', external_userid, 'strong'
    from wecom_contacts
    union all
    select 'person', 'wecom_external_contact', external_userid, 'wechat_unionid', unionid, 'strong'
    from wecom_contacts where unionid is not null
    union all
    select 'person', 'wecom_external_contact', external_userid, 'phone', mobile_token, 'weak'
    from remark_mobiles where mobile_token is not null
    union all
    select 'person', 'file_contact', file_contact_id, 'phone', mobile_token,
           case when mobile_is_mobile = false then 'weak' else 'strong' end
    from file_contacts where mobile_token is not null
    union all
    select 'person', 'file_contact', file_contact_id, 'email', email_token, 'strong'
    from file_contacts where email_token is not null
    union all
    select 'person', 'sdk_event', event_id, 'phone', payload_phone_token,
           case when payload_phone_token in (select token from fixed_lines) then 'weak' else 'strong' end
    from events where payload_phone_token is not null
    union all
    select 'person', 'sdk_event', event_id, 'email', payload_email_token, 'strong'
    from events where payload_email_token is not null
),

final as (
    select distinct entity_type, record_source, record_id, identifier_type, identifier, strength
    from identifiers
)

select * from final
