"""Skills: the contract, the library of language-conditioned arm primitives, grounding."""
from skills.base import Skill, SkillCall, SkillContext, SkillError, SkillOutcome
from skills.library import SkillLibrary, default_library

__all__ = ["Skill", "SkillCall", "SkillContext", "SkillError", "SkillLibrary", "SkillOutcome", "default_library"]
