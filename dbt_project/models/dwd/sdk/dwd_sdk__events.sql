-- Web/app/mini-app events of the business date (deduplicated on event_id at ingestion).
{{ config(materialized='incremental', unique_key='business_date', incremental_strategy='delete+insert',
          mysql_indexes=[['payload_phone_token'], ['payload_email_token']]) }}

with events as (
    select * from {{ source('ods', 'sdk_events') }}
    where _business_date = cast('{{ var("business_date") }}' as date)
),

final as (
    select
        event_id,
        org_id,
        occurred_at,
        source as event_source,
        type as event_type,
        {{ dbt.split_part('type', "'.'", 1) }} as event_domain,
        {{ dbt.split_part('type', "'.'", 2) }} as event_action,
        {{ dbt.split_part('type', "'.'", 3) }} as event_object,
        ip_token,
        payload_phone_token,
        payload_email_token,
        payload,
        _business_date as business_date
    from events
)

select * from final
