-- grain: one row per 统一社会信用代码 held by an enterprise-keyed resource (法人库, 一企一档) | key: uscc unique not null | owner: dsj
-- inputs: int_entity_attributes, penalty_subjects, silver_credit_license, silver_hrss_social_insurance, silver_tax_credit_rating
-- The registry attributes come from int_entity_attributes (generated from the catalog: each
-- attribute from its authoritative department, else from a copy and flagged). Added here: the
-- latest tax credit rating, the latest social-insurance month, and the numbers of valid
-- (not withdrawn) 双公示 licensing and penalty decisions naming the entity (the penalties from their summary
-- per subject and state, penalty_subjects, which the gold step keeps from run to run).
with

entity_attributes as (
    select *
    from int_entity_attributes
),

tax_ratings as (
    select
        uscc,
        year,
        rating,
        _received_at,
        _row_number
    from silver_tax_credit_rating
    where uscc is not null
),

social_insurance as (
    select
        uscc,
        period,
        insured_count,
        arrears,
        _received_at,
        _row_number
    from silver_hrss_social_insurance
    where uscc is not null
),

licenses as (
    select
        uscc,
        status
    from silver_credit_license
    where uscc is not null
),

penalties as (
    select
        uscc,
        status,
        penalties
    from penalty_subjects
    where uscc is not null
),

ranked_tax_ratings as (
    select
        uscc,
        year,
        rating,
        row_number() over (
            partition by uscc
            order by year desc nulls last, _received_at desc nulls last, _row_number desc nulls last
        ) as rating_rank
    from tax_ratings
),

latest_tax_rating as (
    select
        uscc,
        year as tax_rating_year,
        rating as tax_rating
    from ranked_tax_ratings
    where rating_rank = 1
),

ranked_social_insurance as (
    select
        uscc,
        period,
        insured_count,
        arrears,
        row_number() over (
            partition by uscc
            order by period desc nulls last, _received_at desc nulls last, _row_number desc nulls last
        ) as period_rank
    from social_insurance
),

latest_social_insurance as (
    select
        uscc,
        period as social_insurance_period,
        insured_count as social_insurance_insured_count,
        arrears as social_insurance_arrears
    from ranked_social_insurance
    where period_rank = 1
),

license_counts as (
    select
        uscc,
        count(*) as license_count
    from licenses
    where status = '有效'
    group by uscc
),

penalty_counts as (
    select
        uscc,
        cast(sum(penalties) as bigint) as penalty_count
    from penalties
    where coalesce(status, '有效') = '有效'
    group by uscc
),

legal_entity as (
    select
        entity_attributes.*,
        latest_tax_rating.tax_rating_year,
        latest_tax_rating.tax_rating,
        latest_social_insurance.social_insurance_period,
        latest_social_insurance.social_insurance_insured_count,
        latest_social_insurance.social_insurance_arrears,
        coalesce(license_counts.license_count, 0) as license_count,
        coalesce(penalty_counts.penalty_count, 0) as penalty_count
    from entity_attributes
    left join latest_tax_rating
        on entity_attributes.uscc = latest_tax_rating.uscc
    left join latest_social_insurance
        on entity_attributes.uscc = latest_social_insurance.uscc
    left join license_counts
        on entity_attributes.uscc = license_counts.uscc
    left join penalty_counts
        on entity_attributes.uscc = penalty_counts.uscc
)

select * from legal_entity
