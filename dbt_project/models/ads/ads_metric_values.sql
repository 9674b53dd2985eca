-- Current value of every metric in the dictionary (meta.metrics in ads_metric_values.yml), with the
-- metric's version, so a report can say which definition produced a number.
-- depends_on: {{ ref('dws_contacts') }}
-- depends_on: {{ ref('dws_enterprises') }}
-- depends_on: {{ ref('ads_funnel_base') }}
{%- set metrics = config.get('meta', {}).get('metrics', []) %}

with
{%- for metric in metrics %}
metric_{{ loop.index }} as (
    select
        '{{ metric.name }}' as metric_name,
        {{ metric.version }} as metric_version,
        '{{ metric.unit }}' as unit,
        cast({{ metric.expression }} as {{ metric_number() }}) as metric_value
    from {{ ref(metric.model) }}
),
{%- endfor %}

final as (
    {%- for metric in metrics %}
    select * from metric_{{ loop.index }}
    {% if not loop.last %}union all{% endif %}
    {%- else %}
    select cast(null as {{ dbt.type_string() }}) as metric_name, 0 as metric_version,
           cast(null as {{ dbt.type_string() }}) as unit, cast(null as {{ metric_number() }}) as metric_value
    {%- endfor %}
)

select
    metric_name,
    metric_version,
    unit,
    metric_value,
    cast('{{ var("business_date") }}' as date) as as_of_date
from final
where metric_name is not null
