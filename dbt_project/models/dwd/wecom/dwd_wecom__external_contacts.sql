-- Customers as WeCom external contacts, one row per (customer, following member): the follow is
-- itself an interaction (when the member added the customer, with what remark and tags).
with snapshot as (
    {{ latest_snapshot(source('ods', 'wecom_external_contacts')) }}
),

final as (
    select
        external_userid,
        follow_userid,
        name as contact_name,
        {{ name_key('name') }} as contact_name_key,
        type as contact_type,
        position,
        corp_name,
        corp_full_name,
        {{ company_key('corp_full_name') }} as corp_name_key,
        unionid,
        remark,
        -- the company the member noted: a personal WeChat account (type 1) shows none of its own
        nullif(remark_corp_name, '') as remark_corp_name,
        createtime as followed_at,
        tag_id as tag_ids,
        remark_mobiles_tokens,
        add_way,
        _business_date as snapshot_date
    from snapshot
)

select * from final
