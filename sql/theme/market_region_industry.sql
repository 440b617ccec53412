-- grain: one row per county (行政区划代码) and industry section (行业门类, GB/T 4754) of the enterprises known to the lake | key: region_code + industry_section unique not null | owner: dsj
-- inputs: gold_enterprise_credit_profile
-- 市场主体主题库: enterprises per county and industry section (the letter of the industry code), from
-- the 一企一档 credit files of the credit theme: how many there are, how many are still registered (not
-- 注销 or 吊销), their registered capital, and how many have a published penalty, a serious one (严重),
-- or social-insurance arrears. A missing county or industry code is counted under 未知. The sums are cast
-- so that both engines write the same types (DuckDB's sum of integers is a hugeint, Spark's a bigint).
with

profiles as (
    select
        uscc,
        reg_capital,
        coalesce(region_code, '未知') as region_code,
        coalesce(upper(substr(industry_code, 1, 1)), '未知') as industry_section,
        case when registration_revoked then 0 else 1 end as registered,
        case when published_penalty_count > 0 then 1 else 0 end as penalized,
        case when published_serious_count > 0 then 1 else 0 end as seriously_penalized,
        case when has_social_insurance_arrears then 1 else 0 end as in_arrears
    from gold_enterprise_credit_profile
),

by_region_industry as (
    select
        region_code,
        industry_section,
        count(uscc) as enterprises,
        cast(sum(registered) as bigint) as registered_enterprises,
        cast(sum(reg_capital) as decimal(18, 4)) as registered_capital,
        cast(sum(penalized) as bigint) as with_published_penalty,
        cast(sum(seriously_penalized) as bigint) as with_serious_penalty,
        cast(sum(in_arrears) as bigint) as with_social_insurance_arrears
    from profiles
    group by region_code, industry_section
)

select * from by_region_industry
