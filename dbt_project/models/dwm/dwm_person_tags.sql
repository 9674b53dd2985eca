{{ config(mysql_indexes=[['one_id'], ['tag_name']]) }}
-- The WeCom customer tags of each person OneID: a tag any following member gave any of the person's
-- external-contact records. Segment rules (`tag:` conditions) read this table.
with tagged as (
    {{ unnest_list("select external_userid, tag_ids from " ~ ref('dwd_wecom__external_contacts'),
                   'tag_ids', 'tag_id', ['external_userid']) }}
),

identities as (
    select record_id, one_id
    from {{ source('oneid', 'identity_map') }}
    where entity_type = 'person' and record_source = 'wecom_external_contact'
),

tags as (
    select * from {{ ref('dwd_wecom__corp_tags') }}
),

final as (
    select distinct
        identities.one_id as one_id,
        tagged.tag_id as tag_id,
        tags.tag_name as tag_name,
        tags.group_name as group_name,
        cast('{{ var("business_date") }}' as date) as as_of_date
    from tagged
    inner join identities on tagged.external_userid = identities.record_id
    inner join tags on tagged.tag_id = tags.tag_id
)

select * from final
