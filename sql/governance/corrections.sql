-- grain: one row per (resource, item, entity): the latest correction a resolved objection made | key: resource + item + entity_key unique | owner: dsj
-- inputs: governance_objections
with ranked as (
    select
        resource,
        item,
        entity_key,
        disputed_value,
        corrected_value,
        row_number() over (
            partition by resource, item, entity_key order by resolved_at desc, objection_id desc
        ) as correction_rank
    from governance_objections
    where outcome = 'resolved' and corrected_value is not null
),

latest as (
    select
        resource,
        item,
        entity_key,
        disputed_value,
        corrected_value
    from ranked
    where correction_rank = 1
)

select * from latest
