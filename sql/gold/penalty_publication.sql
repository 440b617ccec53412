-- grain: one row per valid penalty decision (行政处罚决定书文号 + 处罚机关统一社会信用代码) | key: decision_no + authority_uscc unique not null | owner: credit
-- 双公示 行政处罚 publication: the national-standard fields of every decision that is not withdrawn.
-- 当前状态 is an optional column for penalties: a missing status means 有效; 无效 (withdrawn) is not
-- published. _dept / _source / _row_number trace a published row back to its department and file row.
with

penalties as (
    select
        subject_name,
        subject_type,
        uscc,
        reg_no,
        org_code,
        tax_reg_no,
        inst_cert_no,
        social_org_no,
        legal_rep,
        legal_rep_id_type,
        legal_rep_id_no,
        id_type,
        id_no,
        decision_no,
        violation_type,
        facts,
        basis,
        penalty_category,
        content,
        fine_amount,
        confiscated_amount,
        licence_revoked,
        decision_date,
        valid_until,
        publish_until,
        authority,
        authority_uscc,
        -- the penalty feed's 当前状态 column is optional: a decision without one is in force
        coalesce(status, '有效') as status,
        source_dept,
        source_dept_uscc,
        remark,
        submitted_at,
        _dept,
        _source,
        _row_number
    from silver_credit_penalty
),

valid_penalties as (
    select *
    from penalties
    where status = '有效'
),

-- issue 3 (publication deadline): add deadline_date (7th working day after decision_date, per
-- the feed's configured working days) and on_time (submitted_at on or before the deadline) here,
-- as a CTE joining valid_penalties to the working-day calendar, and select from it below.
-- The end of the publicity period (publish_until, credit repair) is not applied yet either.
published as (
    select *
    from valid_penalties
)

select * from published
