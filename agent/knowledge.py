"""The knowledge base in the loop: retrieve before each step, learn after each episode.

- Task-level items (preferences, aliases, plan constraints) relevant to the scene go to
  the high-level policy, which reports the ones it actually used.
- Skill-level items are retrieved per step by text similarity of "<skill> <object>" plus
  visual similarity of the object's crop, filtered to the same skill and object category,
  above a threshold; among conflicting items the one with more evidence, then the most
  recent, wins. Their values become the skill's parameters.
- Every applied item is shown to the operator and logged in the episode.
- After the episode, corrections are distilled into items (duplicates reinforce the
  existing item instead of adding one), and applied items are scored: contradicted when
  the operator corrected the same step, success or failure otherwise.
"""
from __future__ import annotations

import getpass
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from agent.episode import EpisodeLog
from corrections_kb.distill import Distiller, RuleDistiller
from corrections_kb.evidence import agreement, covers, is_narrow, same_effect, scope_key, supersedes
from corrections_kb.effects import Alias, GraspOffset, InsertStep, Note, Order, ParamChange, PreferredContainer, SpeedScale
from corrections_kb.errors import KBError
from corrections_kb.knowledge import Knowledge
from corrections_kb.store import KnowledgeStore
from corrections_kb.types import SKILL_LEVEL_KINDS
from robot.describe import AmbiguousObjectError, UnknownObjectError, resolve
from robot.lexicon import Lexicon
from robot.types import SceneObject
from skills.base import SkillCall
from skills.library import default_library

STEP_KINDS = SKILL_LEVEL_KINDS  # corrections that contradict a skill-level item applied to their step
# The operator's review of what an episode taught: for each proposed item, the item to keep
# (possibly with an edited statement) or None to reject it.
Review = Callable[[list[Knowledge], EpisodeLog], list[Optional[Knowledge]]]


@dataclass
class AppliedKnowledge:
    item: Knowledge
    overrides: dict[str, Any] = field(default_factory=dict)
    speed_scale: float | None = None
    similarity: float | None = None

    @property
    def id(self) -> int:
        return int(self.item.id or 0)

    def describe(self) -> str:
        ep = self.item.provenance.get("episode") or "?"
        return f"using: {self.item.statement} (learned in episode {ep})"


def _words(text: str) -> set[str]:
    import re

    return set(re.findall(r"[a-z]+", text.lower()))


class KnowledgeBridge:
    """Implements the agent's `KnowledgeSource` on a knowledge store."""

    def __init__(self, store: KnowledgeStore, *, operator: str | None = None, user: str | None = None, site: str | None = None,
                 threshold: float = 0.5, visual: bool = True, learn: bool = True, distiller: Distiller | None = None,
                 embed_text: Any = None, embed_image: Any = None, defer: bool = False,
                 review: Review | None = None) -> None:
        self.store = store
        self.operator = operator or _whoami()
        self.user, self.site = user, site
        self.threshold = threshold
        self.visual = visual
        self.learn = learn
        self.distiller = distiller or RuleDistiller()
        self.review = review  # None: learn from successful episodes without asking ("auto")
        self._embed_text = embed_text
        self._embed_image = embed_image
        self._step_crops: dict[int, np.ndarray] = {}
        self._applied_steps: list[tuple[int, AppliedKnowledge]] = []
        self._task_items: list[Knowledge] = []
        self._failed_here: set[int] = set()
        # defer=True: keep new items and use counts for the caller to commit later (parallel evaluation)
        self.defer = defer
        self.pending_uses: list[tuple[int, str, str]] = []
        self.pending_items: list[Knowledge] = []

    # ----- embeddings (lazy: the models load on first use) -----
    def text_vec(self, text: str) -> np.ndarray:
        if self._embed_text is None:
            from corrections_kb.embed import embed_text

            self._embed_text = embed_text
        return np.asarray(self._embed_text(text), np.float32).reshape(-1)

    def image_vec(self, crop: np.ndarray) -> np.ndarray:
        if self._embed_image is None:
            from corrections_kb.embed import embed_image

            self._embed_image = embed_image
        return np.asarray(self._embed_image(crop), np.float32).reshape(-1)

    def _crop(self, obj: SceneObject, observation: dict[str, Any]) -> np.ndarray | None:
        """The object's crop from the front camera's segmentation, when cameras are on."""
        if not self.visual:
            return None
        rgb, seg = observation.get("observation.images.front"), observation.get("observation.segmentation.front")
        if rgb is None or seg is None or obj.seg_id < 0:
            return None
        mask = np.asarray(seg) == obj.seg_id
        if mask.sum() < 12:  # hidden or too small to say anything
            return None
        from corrections_kb.embed import crop_from_mask

        return crop_from_mask(np.asarray(rgb), mask)

    def _mine(self, item: Knowledge) -> bool:
        """An item scoped to a user (or site) applies to that user only; shared items apply to everyone."""
        return item.scope.get("user") in (None, self.user) and item.scope.get("site") in (None, self.site)

    # ----- retrieval -----
    def step_failed(self, step_index: int) -> None:
        """A step failed with knowledge applied: do not retry it with the same items this episode."""
        for i, a in self._applied_steps:
            if i == step_index:
                self._failed_here.add(a.id)

    def for_task(self, task: str, objects: list[SceneObject]) -> list[Knowledge]:
        self._applied_steps, self._step_crops, self._failed_here = [], {}, set()
        cats = {o.category for o in objects} | {str(o.attributes.get("group")) for o in objects}
        names = {o.name for o in objects}
        words = _words(task)
        out = []
        task_vec = None
        for item in self.store.list(kind="task", user=self.user, site=self.site):
            e = item.effect
            if not self._mine(item) or item.suspended:
                continue
            if item.scope.get("object") and item.scope["object"] not in names:
                continue  # a narrow item: only where its own object is
            if isinstance(e, Alias):
                ok = e.word in words and e.means in cats
            elif isinstance(e, PreferredContainer):
                ok = e.applies_to in cats
            elif isinstance(e, Order):
                ok = e.first in cats
            elif isinstance(e, (InsertStep, Note)):  # about a kind of task: found by the task's text
                if task_vec is None:
                    task_vec = self.text_vec(task)
                ref = self.text_vec(str(item.provenance.get("task") or item.statement))
                ok = float(task_vec @ ref) / (np.linalg.norm(task_vec) * np.linalg.norm(ref) + 1e-9) >= 0.6
            else:
                ok = False
            if ok:
                out.append(item)
        out.sort(key=lambda k: (is_narrow(k), k.rank_key), reverse=True)  # the specific before the general
        self._task_items = out
        return out

    def for_step(self, task: str, call: SkillCall, objects: list[SceneObject], observation: dict[str, Any],
                 step_index: int = 0, lexicon: Lexicon | None = None) -> list[AppliedKnowledge]:
        """Skill-level items for this step's skill and the object in its primary slot."""
        slot = (lexicon or default_library().lexicon()).primary_slot(call.skill)
        desc = call.args.get(slot) if slot else None
        if not desc:
            return []
        try:
            obj = resolve(desc, objects)
        except (UnknownObjectError, AmbiguousObjectError):
            return []
        crop = self._crop(obj, observation)
        if crop is not None:
            self._step_crops[step_index] = crop
        query_text = self.text_vec(f"{call.skill} {obj.description}")
        query_img = self.image_vec(crop) if crop is not None else None
        hits = self.store.search(query_text, query_img, k=8,  # a narrow item only for its own instance
                                 filters={"kind": "skill", "skill": call.skill, "object_category": obj.category,
                                          "object": obj.name, "user": self.user, "site": self.site})
        best: dict[str, tuple[tuple[Any, ...], Any]] = {}
        for h in hits:
            if h.score < self.threshold or h.knowledge.id in self._failed_here or h.knowledge.suspended \
                    or not self._mine(h.knowledge):
                continue
            e = h.knowledge.effect
            key = e.param if isinstance(e, (ParamChange, GraspOffset)) else e.type
            # conflicts: more evidence first, then the most recent
            rank = (h.knowledge.successes - 2 * h.knowledge.contradictions, h.knowledge.updated_at or 0, h.score)
            if key not in best or rank > best[key][0]:
                best[key] = (rank, h)
        applied = []
        for _, h in best.values():
            e = h.knowledge.effect
            a = AppliedKnowledge(h.knowledge, similarity=h.score)
            if isinstance(e, (ParamChange, GraspOffset)) and e.param and e.value is not None:
                a.overrides[e.param] = e.value  # a grasp offset is in the object's frame: the skill applies it so
            elif isinstance(e, SpeedScale):
                a.speed_scale = e.scale
            else:
                continue
            applied.append(a)
            self._applied_steps.append((step_index, a))
        return applied

    # ----- learning -----
    def end_episode(self, log: EpisodeLog) -> list[Learned]:
        """Score what was applied, then learn what the episode supports (see the module docstring)."""
        episode = log.to_dict()
        episode["operator"] = self.operator
        corrections = episode["corrections"]
        # score what was applied
        for step_index, a in self._applied_steps:
            step = log.steps[step_index] if step_index < len(log.steps) else None
            contradicted = step is not None and any(
                c["applied"] and c["parsed"].get("kind") in STEP_KINDS and step.t_start - 1e-6 <= c["t"] <= step.t_end + 1e-6
                for c in corrections)
            outcome = "contradicted" if contradicted else ("success" if step is not None and step.ok else "failure")
            self._use(a.id, outcome, episode["episode"])
        used_task = [k for k in self._task_items if k.id in set(log.task_knowledge_used)]
        plan_fixes = any(c["applied"] and c["parsed"].get("kind") in ("plan", "object") for c in corrections)
        for k in used_task:
            self._use(int(k.id), "contradicted" if plan_fixes else ("success" if log.success else "failure"),
                      episode["episode"])
        if not self.learn:
            return []
        new = self.distiller.distill(episode, log.lexicon)
        if not new or (log.success is False and self.review is None):
            return []  # a failed episode teaches only what the operator confirms
        for item in new:
            item.scope = {**item.scope, "user": self.user, "site": self.site}
        kept, rejected = self._reviewed(new, log)
        for item in kept:
            item.text_embedding = self.text_vec(_key_text(item))
            crop = self._crop_for(item, log)
            if crop is not None:
                item.visual_embedding = self.image_vec(crop)
        if self.defer:
            self.pending_items += kept
            return []
        for item in rejected:  # the choice is recorded: kept, disabled, with why
            self.store.add(item.replace(active=False))
        return commit(self.store, [], kept)

    def _reviewed(self, items: list[Knowledge], log: EpisodeLog) -> tuple[list[Knowledge], list[Knowledge]]:
        """(kept, rejected): the operator's review when there is one, else every item ("auto")."""
        if self.review is None:
            return [k.replace(provenance={**k.provenance, "review": "auto"}) for k in items], []
        kept, rejected = [], []
        for item, decision in zip(items, self.review(items, log)):
            if decision is None:
                rejected.append(item.replace(provenance={**item.provenance, "review": "rejected"}))
            else:
                edited = decision.statement != item.statement
                kept.append(decision.replace(provenance={**decision.provenance, "review": "edited" if edited else "kept"}))
        return kept, rejected

    def _use(self, item_id: int, outcome: str, episode: str) -> None:
        if self.defer:
            self.pending_uses.append((item_id, outcome, episode))
            return
        try:
            self.store.record_use(item_id, outcome, {"episode": episode})
        except KBError:
            pass  # an item removed meanwhile: nothing to score

    def _crop_for(self, item: Knowledge, log: EpisodeLog) -> np.ndarray | None:
        """The crop of the object a skill-level item is about, from a step of its skill."""
        if item.kind != "skill":
            return None
        for i, step in enumerate(log.steps):
            ref = step.acted_on
            if step.call["skill"] == item.scope.get("skill") and i in self._step_crops and ref \
                    and ref.get("category") == item.scope.get("object_category"):
                return self._step_crops[i]
        return None

    def close(self) -> None:
        self.store.close()


@dataclass(frozen=True)
class Learned:
    """What committing one distilled item did: "new", "widened" (a stored narrow item now covers
    its category), "reinforced" (said again); a new item may supersede stored ones."""

    item: Knowledge
    change: str
    superseded: tuple[int, ...] = ()

    def describe(self) -> str:
        verb = {"new": "learned", "widened": "widened", "reinforced": "heard again"}[self.change]
        revised = f"; replaces #{', #'.join(map(str, self.superseded))}" if self.superseded else ""
        return f"{verb}: {self.item.statement} [{scope_text(self.item)}]{revised}"


def scope_text(k: Knowledge) -> str:
    """Where an item applies, in words: "blue jug only, when I pick", "every jug", "user ann"."""
    s = k.scope
    parts = []
    if s.get("object"):
        parts.append(f"{str(s['object']).replace('_', ' ')} only")
    elif s.get("object_category"):
        parts.append(f"every {s['object_category']}")
    if s.get("skill"):
        parts.append(f"when I {str(s['skill']).replace('_', ' ')}")
    if s.get("task"):
        parts.append(f"task {s['task']!r}")
    if s.get("user"):
        parts.append(f"user {s['user']}")
    if s.get("site"):
        parts.append(f"site {s['site']}")
    return ", ".join(parts) or "everywhere"


def commit(store: KnowledgeStore, uses: list[tuple[int, str, str]], items: list[Knowledge]) -> list[Learned]:
    """Record use outcomes, then add what the items teach (corrections_kb.evidence): an item said
    again reinforces the stored one, a second instance agreeing widens a narrow item, a revised
    preference replaces the one it contradicts (disabled, with its history)."""
    for item_id, outcome, episode in uses:
        try:
            store.record_use(item_id, outcome, {"episode": episode})
        except KBError:
            pass  # an item removed meanwhile: nothing to score
    out: list[Learned] = []
    existing = store.list(kind=None, active_only=True, with_embeddings=False)
    for item in items:
        ep = {"episode": item.provenance.get("episode")}
        tag = f" (episode {ep['episode']})" if ep["episode"] else ""
        same = next((k for k in existing if same_effect(k, item) and scope_key(k) == scope_key(item)), None)
        same = same or next((k for k in existing if covers(k, item)), None)
        if same is not None:
            store.record_use(int(same.id), "success", {**ep, "reinforced": True})
            out.append(Learned(same, "reinforced"))
            continue
        agreed = next(((k, w) for k in existing if (w := agreement(k, item)) is not None), None)
        if agreed is not None:
            stored, widening = agreed
            wide = store.update(int(stored.id), reason=f"agreed on a second instance ({item.scope.get('object')}): "
                                                      f"widened to the {widening.level}{tag}", **widening.changes)
            store.record_use(int(stored.id), "success", {**ep, "widened": widening.level})
            existing = [wide if k.id == wide.id else k for k in existing]
            out.append(Learned(wide, "widened"))
            continue
        old = [k for k in existing if supersedes(item, k)]
        new_id = store.add(item)
        for k in old:
            store.disable(int(k.id), reason=f"superseded by #{new_id}: {item.statement}{tag}")
        added = store.get(new_id)
        existing = [k for k in existing if k not in old] + [added]
        out.append(Learned(added, "new", tuple(int(k.id) for k in old)))
    return out


def undo_episode(store: KnowledgeStore, episode: str | None = None) -> tuple[str | None, list[str]]:
    """Take back what one episode (default: the last that taught anything) did to the store: its new
    items are disabled, items it widened go back to their narrow version, items it superseded are
    enabled again. History keeps all of it. Returns (episode, what was done, one line each)."""
    changes: list[tuple[float, str, int, str]] = []  # (when, episode, item id, action)
    for k in store.list(active_only=False, with_embeddings=False):
        for h in store.history(int(k.id)):
            ep = h.item.provenance.get("episode") if h.action == "add" else _episode_in(h.reason)
            if ep:
                changes.append((h.at, str(ep), int(k.id), h.action))
    if not changes:
        return None, []
    episode = episode or max(changes)[1]
    done = []
    for _, ep, item_id, action in sorted(changes, reverse=True):
        if ep != episode:
            continue
        if action == "add":
            k = store.disable(item_id, reason=f"undo of episode {episode}")
            done.append(f"disabled #{item_id}: {k.statement}")
        elif action == "edit":
            k = store.undo(item_id, reason=f"undo of episode {episode}")
            done.append(f"narrowed #{item_id} again: {k.statement}")
        elif action == "disable":
            k = store.enable(item_id, reason=f"undo of episode {episode}")
            done.append(f"enabled #{item_id} again: {k.statement}")
    return episode, done


def _episode_in(reason: str | None) -> str | None:
    if not reason or "undo of episode" in reason:
        return None
    m = re.search(r"\(episode ([^)]+)\)$", reason)
    return m[1] if m else None


def _key_text(item: Knowledge) -> str:
    """The text an item is found by: '<skill> <object>' for skill items, the statement otherwise."""
    if item.kind == "skill":
        return f"{item.scope.get('skill') or ''} {item.scope.get('object') or item.scope.get('object_category') or ''}".replace("_", " ").strip()
    return item.statement


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def open_knowledge(spec: str, **kwargs: Any) -> KnowledgeBridge:
    """`--kb PATH`, `--kb sqlite:PATH` or `--kb new:PATH`: a bridge on that store.

    A store that refuses writes (it failed its check at open: `store.corrupt`) is refused
    here, before the arm moves, rather than read from and then failing to learn at the end."""
    from corrections_kb.errors import KnowledgeStoreError
    from corrections_kb.store import open_store

    store = open_store(spec)
    corrupt = store.corrupt
    if corrupt:
        store.close()
        raise KnowledgeStoreError(corrupt)
    return KnowledgeBridge(store, **kwargs)
