{{ config(materialized='incremental', unique_key='order_id') }}

select
    order_id,
    customer_id,
    batch,
    {{ shop_utils.cents_to_amount('amount_cents') }} as amount
from {{ source('shop_landing', 'order_batch') }}
{% if is_incremental() %}
where batch > (select coalesce(max(batch), 0) from {{ this }})
{% endif %}
