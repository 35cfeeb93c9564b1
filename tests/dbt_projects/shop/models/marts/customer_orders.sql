with customers as (
    select * from {{ ref('stg_customers') }}
),

totals as (
    select * from {{ ref('order_totals') }}
),

final as (
    select
        customers.customer_id,
        customers.customer_name,
        coalesce(totals.orders, 0) as orders,
        coalesce(totals.total_amount, 0) as total_amount
    from customers
    left join totals on totals.customer_id = customers.customer_id
)

select * from final
