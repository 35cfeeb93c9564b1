with source as (
    select * from {{ ref('raw_orders') }}
),

final as (
    select id as order_id, customer_id, cast(order_date as date) as order_date, amount from source
)

select * from final
