{{ config(mysql_indexes=[['userid']]) }}
-- The firm's own staff (sales and service), from the newest WeCom snapshot.
with snapshot as (
    {{ latest_snapshot(source('ods', 'wecom_users')) }}
),

final as (
    select
        userid,
        name as member_name,
        position,
        main_department as main_department_id,
        department as department_ids,
        is_leader_in_dept,
        direct_leader as direct_leader_userids,
        status,
        status = 1 as is_active,
        mobile_token,
        email_token,
        _business_date as snapshot_date
    from snapshot
)

select * from final
