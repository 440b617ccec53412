-- grain: one row per 统一社会信用代码, 证件号码, 行政相对人类别 and 当前状态 of silver's penalty decisions (running totals) | key: uscc + id_no + subject_type + status unique | owner: dsj
-- inputs: penalty_rows, penalty_subjects_before
-- silver/credit_penalty summed up for the gold models that read it (the 法人库's penalty counts and the
-- enterprises penalties name, the 人口库's copies of a natural person's name, the 一人一档's counts and fines):
-- per group the decisions counted, their fines summed, and the group's latest row (by arrival, then row
-- number; a known value ranks above an unknown one) with the subject name it gives. A person's latest row is
-- the latest of their groups' latest rows, so the models read these few rows instead of every penalty.
-- Kept from run to run by the gold step (govlake.gold): penalty_rows are the rows of the data files silver
-- gained since the version summed, penalty_subjects_before the summary so far — or, when silver lost a data
-- file since (a merge, a compaction: rows can only be counted in), every silver row and no summary.
with

counted as (
    select
        uscc,
        id_no,
        subject_type,
        status,
        cast(1 as bigint) as penalties,
        cast(fine_amount as decimal(38, 4)) as fine_total,
        subject_name,
        _received_at,
        _row_number
    from penalty_rows
    union all
    select
        uscc,
        id_no,
        subject_type,
        status,
        penalties,
        fine_total,
        subject_name,
        _received_at,
        _row_number
    from penalty_subjects_before
),

ordered as (
    select
        *,
        struct_pack(
            _received_at_known := _received_at is not null,
            _received_at := _received_at,
            _row_number_known := _row_number is not null,
            _row_number := _row_number
        ) as row_order
    from counted
),

penalty_subjects as (
    select
        uscc,
        id_no,
        subject_type,
        status,
        cast(sum(penalties) as bigint) as penalties,
        cast(sum(fine_total) as decimal(38, 4)) as fine_total,
        arg_max(struct_pack(v := subject_name), row_order).v as subject_name,
        arg_max(struct_pack(v := _received_at), row_order).v as _received_at,
        arg_max(struct_pack(v := _row_number), row_order).v as _row_number
    from ordered
    group by uscc, id_no, subject_type, status
)

select * from penalty_subjects
