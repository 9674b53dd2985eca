{{ config(mysql_indexes=[['tag_id']]) }}
-- The customer tags of the newest WeCom snapshot up to the business date, with their groups:
-- what marketers name in segment rules (segments/, docs/segments.md).
with snapshot as (
    {{ latest_snapshot(source('ods', 'wecom_corp_tags')) }}
),

final as (
    select
        id as tag_id,
        name as tag_name,
        group_id,
        group_name,
        _business_date as snapshot_date
    from snapshot
    where not coalesce(deleted, false)
        and not coalesce(group_deleted, false)
)

select * from final
