-- grain: one row per valid licensing decision (行政许可决定文书号 + 许可机关统一社会信用代码) | key: doc_no + authority_uscc unique not null | owner: credit
-- 双公示 行政许可 publication: the national-standard fields of every decision whose 当前状态 is 有效
-- (a withdrawn decision, 无效, is not published), with _dept / _source / _row_number for tracing a
-- published row back to the department and the file row it came from.
with

licenses as (
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
        doc_name,
        doc_no,
        license_category,
        cert_name,
        license_no,
        content,
        decision_date,
        valid_from,
        valid_to,
        authority,
        authority_uscc,
        status,
        source_dept,
        source_dept_uscc,
        remark,
        submitted_at,
        _dept,
        _source,
        _row_number
    from silver_credit_license
),

valid_licenses as (
    select *
    from licenses
    where status = '有效'
),

-- issue 3 (publication deadline): add deadline_date (7th working day after decision_date, per
-- the feed's configured working days) and on_time (submitted_at on or before the deadline) here,
-- as a CTE joining valid_licenses to the working-day calendar, and select from it below.
published as (
    select *
    from valid_licenses
)

select * from published
