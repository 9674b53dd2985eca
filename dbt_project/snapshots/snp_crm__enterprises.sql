{#- History of CRM enterprises: a change adds a version, a delete closes the current one
    (hard_deletes='new_record' writes the deletion), a restore opens a new one. This history holds
    personal data (legal representatives): erasure must reach it. -#}
{% snapshot snp_crm__enterprises %}
{{ config(unique_key='enterprise_id', strategy='check', check_cols='all', hard_deletes='new_record') }}

select
    enterprise_id,
    enterprise_name,
    credit_code,
    industry,
    province,
    city,
    address,
    legal_representative,
    registered_capital,
    updated_at
from {{ ref('dwd_crm__enterprises') }}

{% endsnapshot %}
