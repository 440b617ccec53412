-- grain: one row per natural person (身份证号) of the 人口库 or named by a person-level record (一人一档) | key: id_number unique not null | owner: dsj
-- inputs: penalty_subjects, population, silver_amr_enterprise, silver_court_dishonest, silver_credit_license
-- The person's attributes come from population (each from its authoritative department, else a
-- copy). Added here, for records naming the person as a natural person (行政相对人类别 自然人, by
-- 证件号码): valid (not withdrawn) 双公示 penalty decisions, their fines and valid licences; the
-- court's 失信被执行人 entries not removed; the enterprises whose 法定代表人 the person is
-- (amr.enterprise by 法定代表人身份证号); the penalties from their summary per subject and state
-- (penalty_subjects, kept by the gold step). Social insurance (hrss.social_insurance) is reported per
-- employer, with no person-level link, so it is not part of the profile.
with

persons as (
    select
        id_number,
        name,
        in_population_register
    from population
),

penalties as (
    select
        id_no as id_number,
        status,
        penalties,
        fine_total
    from penalty_subjects
    where subject_type = '自然人' and id_no is not null
),

licenses as (
    select
        id_no as id_number,
        status
    from silver_credit_license
    where subject_type = '自然人' and id_no is not null
),

court_entries as (
    select
        id_no as id_number,
        case_no,
        removed_date
    from silver_court_dishonest
    where subject_type = '自然人' and id_no is not null
),

enterprises as (
    select distinct
        legal_rep_id as id_number,
        uscc
    from silver_amr_enterprise
    where legal_rep_id is not null and uscc is not null
),

penalty_totals as (
    select
        id_number,
        cast(sum(penalties) as bigint) as penalty_count,
        cast(coalesce(sum(fine_total), 0) as decimal(38, 4)) as penalty_fine_total
    from penalties
    where coalesce(status, '有效') = '有效'
    group by id_number
),

license_counts as (
    select
        id_number,
        count(*) as license_count
    from licenses
    where status = '有效'
    group by id_number
),

dishonest_counts as (
    select
        id_number,
        count(distinct case_no) as dishonest_case_count
    from court_entries
    where removed_date is null
    group by id_number
),

legal_rep_roles as (
    select
        id_number,
        count(*) as legal_rep_count,
        string_agg(uscc, ';' order by uscc) as legal_rep_usccs
    from enterprises
    group by id_number
),

profiled as (
    select id_number from persons
    union
    select id_number from penalty_totals
    union
    select id_number from license_counts
    union
    select id_number from dishonest_counts
    union
    select id_number from legal_rep_roles
),

person_profile as (
    select
        profiled.id_number,
        persons.name,
        coalesce(persons.in_population_register, false) as in_population_register,
        coalesce(penalty_totals.penalty_count, 0) as penalty_count,
        coalesce(penalty_totals.penalty_fine_total, cast(0 as decimal(38, 4))) as penalty_fine_total,
        coalesce(license_counts.license_count, 0) as license_count,
        coalesce(dishonest_counts.dishonest_case_count, 0) > 0 as dishonest_listed,
        coalesce(dishonest_counts.dishonest_case_count, 0) as dishonest_case_count,
        coalesce(legal_rep_roles.legal_rep_count, 0) as legal_rep_count,
        legal_rep_roles.legal_rep_usccs
    from profiled
    left join persons
        on profiled.id_number = persons.id_number
    left join penalty_totals
        on profiled.id_number = penalty_totals.id_number
    left join license_counts
        on profiled.id_number = license_counts.id_number
    left join dishonest_counts
        on profiled.id_number = dishonest_counts.id_number
    left join legal_rep_roles
        on profiled.id_number = legal_rep_roles.id_number
)

select * from person_profile
