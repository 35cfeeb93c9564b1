-- A view over a view: after the swap it must read production's stg_orders.
select * from {{ ref('stg_orders') }} where amount >= 100
