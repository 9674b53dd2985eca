{#- Indexes on a model's join keys where the engine needs them: MariaDB/MySQL has neither column
    statistics nor hash joins by default, so a join on an unindexed key compares every pair (DuckDB and
    ClickHouse need none). A model lists them in config: mysql_indexes=[['contact_id'], ['mobile_token']].
    Run as the project's post-hook (not named create_indexes: that is dbt's own macro); an index that
    exists already (incremental models) is kept. -#}
{% macro create_join_indexes() %}{{ return(adapter.dispatch("create_join_indexes")()) }}{% endmacro %}

{% macro default__create_join_indexes() %}{% endmacro %}

{% macro mysql__create_join_indexes() %}
    {%- for columns in config.get('mysql_indexes', []) %}
        {%- set name = 'ix_' ~ (columns | join('_')) %}
        {%- set existing = run_query("select count(*) from information_schema.statistics where table_schema = '"
                                     ~ this.schema ~ "' and table_name = '" ~ this.identifier ~ "' and index_name = '"
                                     ~ name ~ "'") %}
        {%- if existing.columns[0].values()[0] == 0 %}
            {%- do run_query('create index ' ~ name ~ ' on ' ~ this ~ ' (' ~ (columns | join(', ')) ~ ')') %}
        {%- endif %}
    {%- endfor %}
{% endmacro %}
