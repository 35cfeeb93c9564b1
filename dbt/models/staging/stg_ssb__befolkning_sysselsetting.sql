with source as (
    select * from {{ source('ssb', 'befolkning_sysselsetting') }}
),

renamed as (
    select
        cast(region as varchar) as region,
        cast(kjonn as varchar) as kjonn,
        cast(alder as varchar) as alder,
        case contentscode
            when 'Employed persons by place of residence' then 'sysselsatte_bosted'
            when 'Population by place of residence' then 'befolkning'
            when 'Employed persons by place of work' then 'sysselsatte_arbeidssted'
        end as maal,
        cast(tid as integer) as tid,
        cast(value as bigint) as verdi
    from source
),

final as (
    select * from renamed
)

select * from final
