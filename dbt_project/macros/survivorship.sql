{#- Golden-record survivorship: for each attribute, a CTE `<attribute>_survivor` holding, per one_id of
    the `candidates` CTE, the value of the first candidate in `order_by` that has one (and, with
    `source_column`, where it came from as `<attribute>_source`). Ends with a comma: CTEs follow. -#}
{% macro survivor_ctes(attributes, order_by, source_column=none) %}
{%- for attribute in attributes %}
{{ attribute }}_survivor as (
    select one_id, {{ attribute }}{% if source_column %}, {{ source_column }} as {{ attribute }}_source{% endif %}
    from (
        select one_id, {{ attribute }}{% if source_column %}, {{ source_column }}{% endif %},
               row_number() over (partition by one_id order by {{ order_by }}) as pick
        from candidates
        where {{ attribute }} is not null
    ) ranked
    where pick = 1
),
{%- endfor %}
{% endmacro %}
