"""What the learned policy sees at one decision point, as numbers (training and inference share it).

Per step:
- text: MiniLM embeddings of the task, of the last instruction and of the retrieved
  knowledge (mean), each with its colour words removed (MiniLM confuses colours; they are
  grounded separately, see `colour`);
- context features: gripper, holding something, steps so far, the last step's skill,
  whether an operator gave it, how many object mentions and colour words the task has;
- per candidate: its MiniLM embedding (colour words removed), its skill, and how it
  relates to the task words, the history and the scene:
  * grounding: the task's object mentions ("crimson cube", "fruit", "drawer") scored
    against the candidate's object: noun match (the category/group vocabulary, else MiniLM
    similarity of the word) times colour agreement of the adjectives before it, normalised
    over the scene's objects (how strongly the mention refers to this object rather than
    another), for the first, last and best mention;
  * history: done before (same skill and object), the last step, object picked last;
  * scene: held now, already in/on something, target occupied, drawer opening, distance
    from the arm's base;
  * knowledge: the best MiniLM similarity of a retrieved statement to the candidate.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

import policies.learned.colour as colour
from policies.learned.candidates import NUDGES, SKILL_KINDS, Candidate, candidate_for_text, is_place_target
from policies.learned.text import TEXT_DIM, TextCache
from policies.rule_based import already_in, held_object
from robot.vocab import CATEGORY_WORDS, GROUP_WORDS
from robot.types import SceneObject
from skills.library import SkillLibrary, normalize

FEATURE_VERSION = 2  # 2: skill kinds are roles (robot.lexicon), not skill names
NOUN_SIM_MIN = 0.6  # MiniLM word similarity above which an unknown word counts as naming an object kind
_FUNCTION_WORDS = {"it", "in", "on", "into", "onto", "to", "of", "and", "up", "out", "top", "you", "me", "i", "we",
                   "could", "would", "can", "will", "for", "with", "from", "at", "by", "its", "my", "your", "is", "be",
                   "that", "this", "there", "then", "now", "all", "every", "each", "some", "any"}

CTX_FEATURES: tuple[str, ...] = (
    "gripper", "holding", "steps", "has_state", "last_by_operator", "has_knowledge", "n_mentions", "n_colour_words",
    *(f"last_{k}" for k in SKILL_KINDS),
)
CAND_FEATURES: tuple[str, ...] = (
    *(f"skill_{k}" for k in SKILL_KINDS),
    *(f"dir_{d}" for d, _ in NUDGES),
    "g_qmax", "g_qfirst", "g_qlast", "g_nrefs", "g_has_obj",
    "h_count", "h_last", "h_obj_seen", "h_last_pick", "h_skill_count",
    "s_held", "s_inside", "s_occupied", "s_drawer", "s_reach", "k_sim",
)


def words_of(text: str) -> list[str]:
    return normalize(text).split()


def embed_text_of(text: str) -> str:
    """The string MiniLM embeds for an instruction or a task: normalised, colour words removed."""
    w = words_of(text)
    return " ".join(colour.mask_colours(w)) or "nothing"


def statement_of(item: Any) -> str:
    return str(getattr(item, "statement", item))


@dataclass
class StepInput:
    """One decision point: the policy's inputs (from a live observation or a recorded frame)."""

    task: str
    history: list[str]  # instructions executed so far, oldest first
    history_sources: list[str]
    objects: list[SceneObject]
    state: np.ndarray | None = None  # observation.state
    knowledge: list[str] = field(default_factory=list)
    image: np.ndarray | None = None  # image features (precomputed), or None


@dataclass
class StepFeatures:
    task_text: str
    last_text: str
    know_texts: list[str]
    cand_texts: list[str]
    ctx: np.ndarray  # (len(CTX_FEATURES),)
    cand: np.ndarray  # (C, len(CAND_FEATURES))
    candidates: list[Candidate]
    image: np.ndarray | None = None


@dataclass
class _TaskParse:
    words: list[str]
    colour_words: list[int]
    colour_dists: dict[int, np.ndarray]
    lexical: dict[int, tuple[str | None, str | None]]  # word index -> (category, group) from the vocabulary
    candidates_words: list[int]  # non-function, non-colour words that may name an object


class Featurizer:
    def __init__(self, library: SkillLibrary, texts: TextCache) -> None:
        self.library = library
        self.texts = texts
        self._parse_cache: dict[str, _TaskParse] = {}

    # ----- the task sentence -----
    def _parse(self, task: str) -> _TaskParse:
        p = self._parse_cache.get(task)
        if p is not None:
            return p
        w = words_of(task)
        cw = [i for i in range(len(w)) if colour.is_colour_word(w, i)]
        dists = {i: d for i in cw if (d := colour.distribution(w[i])) is not None}
        lexical: dict[int, tuple[str | None, str | None]] = {}
        other: list[int] = []
        for i, x in enumerate(w):
            if i in cw or x in _FUNCTION_WORDS:
                continue
            cat = CATEGORY_WORDS.get(x)
            grp = GROUP_WORDS.get(x)
            if grp == "*":
                continue
            if cat or grp:
                lexical[i] = (cat, grp)
            elif len(x) > 2 and not x.isdigit():
                other.append(i)
        p = _TaskParse(w, cw, dists, lexical, other)
        if len(self._parse_cache) > 512:
            self._parse_cache.clear()
        self._parse_cache[task] = p
        return p

    def _mentions(self, p: _TaskParse, objects: Sequence[SceneObject]) -> tuple[list[int], np.ndarray]:
        """Word indices that name an object kind, and mu[m, o] = noun match x colour agreement."""
        kinds = sorted({o.category for o in objects} | {str(o.attributes.get("group", "")) for o in objects} - {""})
        noun = {}  # word index -> (n_objects,) noun match
        for i, (cat, grp) in p.lexical.items():
            noun[i] = np.array([1.0 if (cat and o.category == cat) or (grp and o.attributes.get("group") == grp) else 0.0
                                for o in objects])
        if p.candidates_words and kinds:
            wv = self.texts.many([p.words[i] for i in p.candidates_words])
            kv = self.texts.many(kinds)
            sims = wv @ kv.T  # (n_words, n_kinds)
            kidx = {k: j for j, k in enumerate(kinds)}
            for r, i in enumerate(p.candidates_words):
                if sims[r].max() < NOUN_SIM_MIN:
                    continue
                noun[i] = np.array([max(sims[r, kidx[o.category]],
                                        sims[r, kidx.get(str(o.attributes.get("group", "")), kidx[o.category])])
                                    for o in objects])
                noun[i] = np.clip((noun[i] - 0.3) / 0.7, 0.0, 1.0)
        idx = sorted(noun)
        obj_dists = [colour.distribution(o.colour) if o.colour else None for o in objects]
        mu = np.zeros((len(idx), len(objects)))
        for m, i in enumerate(idx):
            adj = [j for j in (i - 1, i - 2) if j in p.colour_dists]
            if adj:  # the colour words right before the noun
                chi = np.array([np.mean([colour.agreement(p.colour_dists[j], d) for j in adj]) for d in obj_dists])
            else:
                chi = np.ones(len(objects))
            mu[m] = noun[i] * chi
        return idx, mu

    # ----- one step -----
    def featurize(self, step: StepInput, candidates: list[Candidate]) -> StepFeatures:
        objects = list(step.objects)
        names = [o.name for o in objects]
        by_name = {o.name: o for o in objects}
        p = self._parse(step.task)
        m_idx, mu = self._mentions(p, objects)
        col = mu.sum(1, keepdims=True)
        q = np.divide(mu, col, out=np.zeros_like(mu), where=col > 1e-9)
        obs = {"observation.state": step.state} if step.state is not None else {}
        held = held_object(obs, objects) if step.state is not None else None

        hist = list(step.history)
        hist_sk = []
        for h in hist:
            c = candidate_for_text(h, objects, self.library)
            hist_sk.append((c.kind, c.obj, c.text) if c is not None else ("other", None, h))
        last = hist_sk[-1] if hist_sk else None
        last_pick = next((o for s, o, _ in reversed(hist_sk) if s == "acquire"), None)

        know = [embed_text_of(statement_of(k)) for k in step.knowledge]
        cand_texts = [embed_text_of(c.text) for c in candidates]
        k_sim = np.zeros(len(candidates))
        if know:
            kv = self.texts.many(know)
            cv = self.texts.many(cand_texts)
            k_sim = (cv @ kv.T).max(1)

        F = {n: j for j, n in enumerate(CAND_FEATURES)}
        cand = np.zeros((len(candidates), len(CAND_FEATURES)), np.float32)
        dirs = [d for d, _ in NUDGES]
        targets = [o for o in objects if is_place_target(o)]
        for r, c in enumerate(candidates):
            cand[r, F[f"skill_{c.kind}"]] = 1.0
            if c.kind == "nudge" and c.call is not None and c.call.args.get("direction") in dirs:
                cand[r, F[f"dir_{c.call.args['direction']}"]] = 1.0
            if c.obj is not None and c.obj in by_name:
                k = names.index(c.obj)
                o = by_name[c.obj]
                cand[r, F["g_has_obj"]] = 1.0
                if len(m_idx):  # only scene-relative reference strengths: absolute colour agreement is
                    # always 0 or 1 in training (exact words), so the model must not learn to rely on it
                    cand[r, F["g_qmax"]] = q[:, k].max()
                    cand[r, F["g_qfirst"]] = q[0, k]
                    cand[r, F["g_qlast"]] = q[-1, k]
                    cand[r, F["g_nrefs"]] = min(int((q[:, k] > 0.5).sum()), 2) / 2
                cand[r, F["s_held"]] = float(held is not None and held.name == o.name)
                if o.attributes.get("graspable"):
                    cand[r, F["s_inside"]] = float(any(t.name != o.name and already_in(o, t) for t in targets))
                if is_place_target(o):
                    cand[r, F["s_occupied"]] = float(any(x.name != o.name and x.attributes.get("graspable")
                                                         and (held is None or x.name != held.name) and already_in(x, o)
                                                         for x in objects))
                cand[r, F["s_reach"]] = float(np.hypot(*o.position[:2])) / 0.7  # how far from the arm's base
                if o.category == "cabinet":
                    cand[r, F["s_drawer"]] = min(float(o.state.get("drawer_open", 0.0)) / 0.15, 1.5)
            same = [h for h in hist_sk if h[2] == c.text or (h[0] == c.skill and c.obj is not None and h[1] == c.obj)]
            cand[r, F["h_count"]] = min(len(same), 3) / 3
            cand[r, F["h_last"]] = float(bool(last) and (last[2] == c.text or (last[0] == c.skill and c.obj is not None
                                                                                 and last[1] == c.obj)))
            cand[r, F["h_obj_seen"]] = float(c.obj is not None and any(h[1] == c.obj for h in hist_sk))
            cand[r, F["h_last_pick"]] = float(c.obj is not None and c.obj == last_pick)
            cand[r, F["h_skill_count"]] = min(sum(h[0] == c.skill for h in hist_sk), 5) / 5
            cand[r, F["k_sim"]] = k_sim[r]

        G = {n: j for j, n in enumerate(CTX_FEATURES)}
        ctx = np.zeros(len(CTX_FEATURES), np.float32)
        if step.state is not None and len(step.state) > 7:
            ctx[G["gripper"]] = float(step.state[7])
            ctx[G["has_state"]] = 1.0
        ctx[G["holding"]] = float(held is not None)
        ctx[G["steps"]] = min(len(hist), 20) / 10
        ctx[G["last_by_operator"]] = float(bool(step.history_sources) and step.history_sources[-1] == "operator")
        ctx[G["has_knowledge"]] = float(bool(know))
        ctx[G["n_mentions"]] = min(len(m_idx), 3) / 3
        ctx[G["n_colour_words"]] = min(len(p.colour_words), 3) / 3
        if last is not None:
            kind = last[0] if last[0] in SKILL_KINDS else "other"
            ctx[G[f"last_{kind}"]] = 1.0
        return StepFeatures(
            task_text=" ".join(colour.mask_colours(p.words)) or "nothing",
            last_text=embed_text_of(hist[-1]) if hist else "nothing yet",
            know_texts=know, cand_texts=cand_texts, ctx=ctx, cand=cand, candidates=list(candidates),
            image=step.image,
        )

    def all_texts(self, f: StepFeatures) -> list[str]:
        return [f.task_text, f.last_text, *f.know_texts, *f.cand_texts]

    def arrays(self, f: StepFeatures) -> dict[str, np.ndarray]:
        """One step's model inputs (batch of one), embeddings looked up."""
        return {
            "task": self.texts.get(f.task_text)[None],
            "last": self.texts.get(f.last_text)[None],
            "know": self.texts.mean(f.know_texts)[None],
            "ctx": f.ctx[None],
            "cand_e": self.texts.many(f.cand_texts)[None],
            "cand_f": f.cand[None],
            "mask": np.ones((1, len(f.cand_texts)), bool),
        }


__all__ = ["CAND_FEATURES", "CTX_FEATURES", "FEATURE_VERSION", "Featurizer", "StepFeatures", "StepInput", "TEXT_DIM",
           "embed_text_of", "statement_of", "words_of"]
