{{ config(mysql_indexes=[['department_id']]) }}
with snapshot as (
    {{ latest_snapshot(source('ods', 'wecom_departments')) }}
),

final as (
    select
        id as department_id,
        name as department_name,
        name_en as department_name_en,
        parentid as parent_department_id,
        department_leader as leader_userids,
        {{ adapter.quote("order") }} as sort_order,
        _business_date as snapshot_date
    from snapshot
)

select * from final
