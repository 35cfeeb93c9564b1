"""A team's review policy (``wap_policy.yml`` in its dbt project): a cycle whose audit report passes every rule
publishes without a reviewer.

``rules`` (the file: parsed and validated into a :class:`Policy`) and ``evaluate`` (a report and the history of
earlier cycles against a policy: the verdict, "publish" or "review", never "reject"). Neither imports Airflow.
"""

from __future__ import annotations

from wap.policy.evaluate import FIGURES, evaluate, recent_range, recent_ranges, rule_lines
from wap.policy.rules import POLICY_FILE, Amount, Limit, Policy, PolicyError, RecentRange, load_policy, parse_policy

__all__ = [
    "FIGURES",
    "POLICY_FILE",
    "Amount",
    "Limit",
    "Policy",
    "PolicyError",
    "RecentRange",
    "evaluate",
    "load_policy",
    "parse_policy",
    "recent_range",
    "recent_ranges",
    "rule_lines",
]
