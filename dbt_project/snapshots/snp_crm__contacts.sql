{#- History of CRM contacts (title, employer, tokens over time); deletes and restores recorded as for
    enterprises. Holds personal data as tokens and ciphertexts: erasure must reach it. -#}
{% snapshot snp_crm__contacts %}
{#- Tokens, not ciphertexts, say whether personal data changed: every landing encrypts under a fresh
    nonce, so an unchanged mobile has a new *_enc each time and would open a version on every re-run. -#}
{{ config(unique_key='contact_id', strategy='check', mysql_indexes=[['contact_id']],
          check_cols=['enterprise_id', 'contact_name', 'mobile_token', 'email_token', 'id_number_token',
                      'title', 'gender', 'updated_at'], **snapshot_deletes()) }}

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
