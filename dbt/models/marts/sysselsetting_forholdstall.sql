with pivoted as (
    select * from {{ ref('int_sysselsetting_pivoted') }}
),

ratios as (
    select
        region,
        kjonn,
        alder,
        tid,
        cast(cast(tid as varchar) || '-01-01' as date) as periode_start,
        sysselsatte_bosted,
        befolkning,
        sysselsatte_arbeidssted,
        round(cast(sysselsatte_bosted as double) / nullif(befolkning, 0), 4) as sysselsettingsandel,
        round(cast(sysselsatte_bosted as double) / nullif(sysselsatte_arbeidssted, 0), 4) as sysselsettingsbalanse
    from pivoted
),

with_change as (
    select
        *,
        round(
            sysselsettingsandel
            - lag(sysselsettingsandel) over (partition by region, kjonn, alder order by tid),
            4
        ) as endring_sysselsettingsandel
    from ratios
),

final as (
    select * from with_change
)

select * from final
