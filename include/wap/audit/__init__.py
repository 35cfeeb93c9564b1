"""The Audit stage: the diff of the write schema against production, run inside the warehouse.

``engine`` (the diff, with ``dialect``'s SQL and ``key_ranges``' split joins), ``report`` (the canonical JSON and
its review id), ``markdown``, ``swap_safety`` (what the swap would break), ``marker`` (what was audited, for
publish to re-check) and ``stage`` (the audit task's work: all of it in order).
"""
