with staged as (
    select * from {{ ref('stg_ssb__befolkning_sysselsetting') }}
),

pivoted as (
    select
        region,
        kjonn,
        alder,
        tid,
        sum(case when maal = 'sysselsatte_bosted' then verdi end) as sysselsatte_bosted,
        sum(case when maal = 'befolkning' then verdi end) as befolkning,
        sum(case when maal = 'sysselsatte_arbeidssted' then verdi end) as sysselsatte_arbeidssted
    from staged
    group by region, kjonn, alder, tid
),

final as (
    select * from pivoted
)

select * from final
