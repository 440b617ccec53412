-- grain: one row per enterprise, 处罚类别 list, 失信 severity and publicity state of its penalty records (running totals) | key: uscc + penalty_category + severity + publicity_status unique | owner: credit
-- inputs: penalty_record_rows, penalty_totals_before
-- The penalties of gold/penalty_record counted and summed per enterprise, category list, severity and state,
-- kept from run to run by the credit step (govlake.credit) so that the 一企一档 profiles read these totals
-- instead of every penalty of the enterprises they re-derive. penalty_record_rows are record rows signed by
-- _sign: on a rebuild every record (+1); on a day the rows of the record table's data files added since the
-- totals' version (+1) and of those removed (-1) — a merge rewrites whole files, so a row it kept is counted
-- out and in again. penalty_totals_before are the totals so far (none on a rebuild). A group whose count
-- comes to nothing is left out.
with

changes as (
    select
        uscc,
        penalty_category,
        severity,
        publicity_status,
        cast(_sign as bigint) as penalties,
        cast(_sign * (coalesce(fine_amount, 0) + coalesce(confiscated_amount, 0)) as decimal(38, 4)) as amount
    from penalty_record_rows
    where uscc is not null
),

before as (
    select
        uscc,
        penalty_category,
        severity,
        publicity_status,
        penalties,
        amount
    from penalty_totals_before
),

penalty_totals as (
    select
        uscc,
        penalty_category,
        severity,
        publicity_status,
        cast(sum(penalties) as bigint) as penalties,
        cast(sum(amount) as decimal(38, 4)) as amount
    from (
        select * from before
        union all
        select * from changes
    ) as counted
    group by uscc, penalty_category, severity, publicity_status
    having sum(penalties) <> 0
)

select * from penalty_totals
