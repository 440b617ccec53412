-- grain: one row per (resource, item, entity) whose value an accepted or verified objection disputes | key: resource + item + entity_key unique | owner: dsj
-- inputs: governance_objections
select distinct
    resource,
    item,
    entity_key
from governance_objections
where disputed
