{{ config(mysql_indexes=[['enterprise_id'], ['enterprise_name_key']]) }}
-- Current CRM enterprises as of the business date; soft-deleted accounts are left out (the
-- snapshot of this model records when they went).
with versions as (
    {{ latest_version(source('ods', 'crm_enterprises'), 'updated_at') }}
),

final as (
    select
        _source_id as enterprise_id,
        name as enterprise_name,
        {{ company_key('name') }} as enterprise_name_key,
        credit_code,
        credit_code_check_ok,
        industry,
        province,
        city,
        address,
        legal_representative,
        registered_capital,
        created_at,
        updated_at,
        _business_date as changed_on
    from versions
    where not coalesce(deleted, false)
)

select * from final
