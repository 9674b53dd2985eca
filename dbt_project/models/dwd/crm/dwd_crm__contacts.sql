{{ config(mysql_indexes=[['contact_id'], ['mobile_token'], ['email_token'], ['enterprise_id']]) }}
-- Current CRM contacts as of the business date. Personal data stays tokenised: joins and OneID use
-- the *_token columns; *_enc ciphertexts are carried for authorised display only.
with versions as (
    {{ latest_version(source('ods', 'crm_contacts'), 'updated_at') }}
),

final as (
    select
        _source_id as contact_id,
        enterprise_id,
        name as contact_name,
        {{ name_key('name') }} as contact_name_key,
        mobile_token,
        mobile_is_mobile,
        mobile_enc,
        email_token,
        email_enc,
        id_number_token,
        id_number_enc,
        title,
        gender,
        created_at,
        updated_at,
        _business_date as changed_on
    from versions
    where not coalesce(deleted, false)
)

select * from final
