select customer_id, count(*) as orders from {{ ref('orders_history') }} group by customer_id
