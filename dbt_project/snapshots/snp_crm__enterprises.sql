{#- History of CRM enterprises: a change adds a version, a delete closes the current one
    (snapshot_deletes(): on DuckDB also a deletion row), a restore opens a new one. This history holds
    personal data (legal representatives): erasure must reach it. -#}
{% snapshot snp_crm__enterprises %}
{{ config(unique_key='enterprise_id', strategy='check', check_cols='all', mysql_indexes=[['enterprise_id']],
          **snapshot_deletes()) }}

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
