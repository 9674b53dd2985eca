-- Contacts from dropped lists (sign-ups, partner lists); a record is its file and record id.
with versions as (
    {{ latest_version(source('ods', 'file_contacts'), 'signed_up_at') }}
),

final as (
    select
        _source_id as file_contact_id,
        record_id,
        name as contact_name,
        {{ name_key('name') }} as contact_name_key,
        mobile_token,
        mobile_is_mobile,
        email_token,
        company,
        {{ company_key('company') }} as company_key,
        title,
        city,
        signed_up_at,
        _business_date as loaded_on
    from versions
)

select * from final
