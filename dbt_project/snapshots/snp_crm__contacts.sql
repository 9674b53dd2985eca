{#- History of CRM contacts (title, employer, tokens over time); deletes and restores recorded as for
    enterprises. Holds personal data as tokens and ciphertexts: erasure must reach it. -#}
{% snapshot snp_crm__contacts %}
{{ config(unique_key='contact_id', strategy='check', check_cols='all', hard_deletes='new_record') }}

select
    contact_id,
    enterprise_id,
    contact_name,
    mobile_token,
    mobile_enc,
    email_token,
    email_enc,
    id_number_token,
    id_number_enc,
    title,
    gender,
    updated_at
from {{ ref('dwd_crm__contacts') }}

{% endsnapshot %}
