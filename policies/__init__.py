"""High-level policies: which skill next (rule-based grounding, learned, VLM)."""
from policies.base import Done, HighLevelPolicy, PlanEdit, PolicyError, Step
from policies.rule_based import RuleBasedPolicy

__all__ = ["Done", "HighLevelPolicy", "PlanEdit", "PolicyError", "RuleBasedPolicy", "Step"]
