-- grain: one row per 统一社会信用代码, 证件号码, 行政相对人类别 and 当前状态 of silver's penalty decisions (running totals) | key: uscc + id_no + subject_type + status unique | owner: dsj
-- inputs: penalty_rows, penalty_subjects_before
-- silver/credit_penalty summed up for the gold models that read it (the 法人库's penalty counts and the
-- enterprises penalties name, the 人口库's copies of a natural person's name, the 一人一档's counts and fines):
-- per group the decisions counted, their fines summed, and the group's latest row (by arrival, then batch,
-- then row number — files landed on a past business date share their received time; a known value ranks above
-- an unknown one) with the subject name it gives. A person's latest row is
-- the latest of their groups' latest rows, so the models read these few rows instead of every penalty.
-- Kept from run to run by the gold step (govlake.gold): penalty_rows are silver rows signed by _sign — those of
-- the data files silver gained since the version summed (+1) and lost (-1; a merge rewrites whole files, so a
-- row it kept is counted out and in again), and every row of a group whose latest row silver lost (0: not
-- counted again, a candidate for the group's latest row) — and penalty_subjects_before the summary so far, a
-- group's latest row no candidate when silver lost it (_stale). On a first run every silver row (+1) and no
-- summary. A row counted out is never a group's latest; a group left with no decision goes.
with

counted as (
    select
        uscc,
        id_no,
        subject_type,
        status,
        cast(_sign as bigint) as penalties,
        cast(_sign * fine_amount as decimal(38, 4)) as fine_total,
        cast(case when fine_amount is not null then _sign else 0 end as bigint) as fined,
        _sign >= 0 as candidate,
        subject_name,
        _received_at,
        _row_number,
        _batch_id
    from penalty_rows
    union all
    select
        uscc,
        id_no,
        subject_type,
        status,
        penalties,
        fine_total,
        fined,
        not _stale as candidate,
        subject_name,
        _received_at,
        _row_number,
        _batch_id
    from penalty_subjects_before
),

ordered as (
    select
        *,
        case
            when candidate then struct_pack(
                _received_at_known := _received_at is not null,
                _received_at := _received_at,
                _batch_id_known := _batch_id is not null,
                _batch_id := _batch_id,
                _row_number_known := _row_number is not null,
                _row_number := _row_number
            )
        end as row_order
    from counted
),

penalty_subjects as (
    select
        uscc,
        id_no,
        subject_type,
        status,
        cast(sum(penalties) as bigint) as penalties,
        cast(case when sum(fined) > 0 then sum(fine_total) end as decimal(38, 4)) as fine_total,
        cast(sum(fined) as bigint) as fined,
        arg_max(struct_pack(v := subject_name), row_order).v as subject_name,
        arg_max(struct_pack(v := _received_at), row_order).v as _received_at,
        arg_max(struct_pack(v := _row_number), row_order).v as _row_number,
        arg_max(struct_pack(v := _batch_id), row_order).v as _batch_id
    from ordered
    group by uscc, id_no, subject_type, status
    having sum(penalties) > 0
)

select * from penalty_subjects
