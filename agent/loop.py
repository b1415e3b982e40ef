"""`Agent.run(task)`: the high-level policy picks skills, skills yield actions per tick,
and operator corrections are applied between any two ticks.

Corrections are parsed with the library's lexicon, handled by the pure handler
(agent.corrections.handle -> effects), and the effects are carried out in one place,
`Agent._apply`.
"""
from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from agent.corrections import NOT_FINITE_REPLY, HandlerConfig, describe_context, finite_effect, handle
from agent.effects import (
    ChangeGoal,
    EditPlan,
    Effect,
    Enqueue,
    Hold,
    Interrupt,
    MarkIntervention,
    RememberDirection,
    Rescale,
    Resume,
    Retarget,
    RunNudge,
    Say,
    SetParam,
    Shift,
)
from agent.episode import (
    FAILED,
    REFUSED,
    SUCCEEDED,
    UNKNOWN,
    CorrectionRecord,
    EpisodeLog,
    EpisodeResult,
    EpisodeState,
    EpisodeView,
    Outcome,
    StepRecord,
    new_episode_id,
)
from agent.events import Event, EventSink
from agent.goal import Goal, ground_goal
from corrections_kb.parser import ParserConfig, parse
from corrections_kb.types import Correction
from policies.base import Done, HighLevelPolicy, PolicyError, Step
from robot.describe import resolve
from robot.errors import CorrigoError
from robot.lexicon import Lexicon
from robot.robot import Robot, SceneProvider
from robot.types import SceneObject
from skills.base import ActionGen, SkillCall, SkillContext, SkillOutcome, set_param
from skills.library import SkillLibrary, default_library
from skills.perception import ObjectSource, privileged_objects

__all__: Sequence[str] = ("Agent", "AgentConfig", "EpisodeResult", "CorrectionRecord", "StepRecord", "summarize")


@dataclass
class AgentConfig:
    max_episode_s: float = 180.0  # episode time (simulated time in sim), s
    realtime: bool = False  # pace ticks at the control rate in wall time
    viewpoint: str = "robot"  # whose left is "left": "robot" or "facing" (operator faces the robot)
    speed_scale_range: tuple[float, float] = (0.2, 3.0)
    done_grace_s: float = 0.0  # when the policy says it is done, hold this long for an operator to object

    def __post_init__(self) -> None:
        if not (self.max_episode_s > 0 and math.isfinite(self.max_episode_s)):
            raise CorrigoError(f"max_episode_s must be positive and finite, got {self.max_episode_s}")
        if self.viewpoint not in ("robot", "facing"):
            raise CorrigoError(f"viewpoint must be 'robot' or 'facing', got {self.viewpoint!r}")


class Recorder(Protocol):
    def start_episode(self, task: str, meta: dict[str, Any]) -> None: ...
    def add_frame(self, observation: dict[str, Any], action: dict[str, Any], instruction: str,
                  intervention: bool, events: list[dict[str, Any]], source: str = "policy") -> None: ...
    def end_episode(self, success: bool | None, meta: dict[str, Any]) -> None: ...


class KnowledgeSource(Protocol):
    """Retrieved knowledge for the loop (see agent.knowledge); optional."""

    def for_task(self, task: str, objects: list[SceneObject]) -> list[Any]: ...
    def for_step(self, task: str, call: SkillCall, objects: list[SceneObject], observation: dict[str, Any],
                 step_index: int = 0, lexicon: Lexicon | None = None) -> list[Any]: ...
    def step_failed(self, step_index: int) -> None: ...
    def end_episode(self, log: EpisodeLog) -> Sequence[Any]: ...  # what it learned, each with describe()


@dataclass
class _Queued:
    text: str
    t_wall: float
    source: str


class Agent:
    """Runs episodes on a body with a high-level policy and a skill library.

    Thread-safe entry point for operators: `submit(text)`. Scripted corrections:
    `schedule(t, text)` (episode time). Events (steps, replies) go to `on_event`.
    """

    def __init__(
        self,
        robot: Robot,
        policy: HighLevelPolicy,
        library: SkillLibrary | None = None,
        *,
        config: AgentConfig | None = None,
        objects: ObjectSource | None = None,
        on_event: EventSink | None = None,
        recorder: Recorder | None = None,
        knowledge: KnowledgeSource | None = None,
    ) -> None:
        self.robot = robot
        self.policy = policy
        self.library = library or default_library()
        self.config = config or AgentConfig()
        self.objects = objects or privileged_objects(robot)
        self.on_event = on_event or (lambda e: None)
        self.recorder = recorder
        self.knowledge = knowledge
        self.parser_config = ParserConfig(viewpoint=self.config.viewpoint, lexicon=self.library.lexicon())
        self.handler_config = HandlerConfig(speed_scale_range=self.config.speed_scale_range)
        self.observers: list[Callable[["Agent"], None]] = []  # e.g. a simulated operator watching each tick
        self._queue: "queue.Queue[_Queued]" = queue.Queue()
        self._scheduled: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.status: dict[str, Any] = {"instruction": "", "step": 0, "reply": "", "t": 0.0, "stopped": False}
        self._reset_episode_state()

    # ----- operator entry points -----
    def submit(self, text: str, source: str = "operator") -> None:
        """Queue an utterance; it is applied before the next control tick."""
        self._queue.put(_Queued(str(text), time.perf_counter(), source))
        self._wake.set()  # a paced loop stops sleeping and applies it now

    def schedule(self, t_s: float, text: str) -> None:
        """Queue an utterance for episode time `t_s` (scripted runs, the simulated operator)."""
        with self._lock:
            self._scheduled.append((float(t_s), text))
            self._scheduled.sort(key=lambda x: x[0])

    # ----- episode state (read-only views for observers and consoles) -----
    @property
    def ctx(self) -> SkillContext:
        return self.state.ctx

    @property
    def t(self) -> float:
        return self.state.t

    @property
    def current(self) -> SkillCall | None:
        return self.state.current

    @property
    def stopped(self) -> bool:
        return self.state.stopped

    @property
    def finishing(self) -> bool:
        return self.state.finishing

    def _reset_episode_state(self) -> None:
        self.state = EpisodeState(ctx=SkillContext(objects=self.objects, dt=self.robot.control_dt))
        self.history: list[Step] = []
        self.step_records: list[StepRecord] = []
        self.correction_records: list[CorrectionRecord] = []
        self.aux: ActionGen | None = None  # a nudge run while stopped
        self.aux_ctx: SkillContext | None = None
        self.task = ""
        self.task_knowledge: list[Any] = []
        self.task_knowledge_used: list[int] = []
        self.step_knowledge: list[Any] = []
        self.episode_id = ""
        self.knowledge_applied: list[dict[str, Any]] = []
        self._frame_events: list[dict[str, Any]] = []
        self._awaiting_latency: list[tuple[CorrectionRecord, float]] = []
        self._deadline = time.perf_counter()
        self._observation: dict[str, Any] = {}
        self.original_goal: Goal | None = None  # the task's own goal; `state.goal` is the corrected one
        self.goal_changes: list[dict[str, Any]] = []
        self._goal_changed = False  # set by _apply, recorded with the utterance by correct()

    def emit(self, kind: str, text: str, **data: Any) -> None:
        if kind == "reply":
            self.status["reply"] = text
        self.on_event(Event(kind, text, self.state.t, data))

    # ----- the episode -----
    def run(self, task: str, success: Callable[[], bool | None] | None = None, episode_id: str | None = None, *,
            goal: Goal | None = None) -> EpisodeResult:
        """Run one episode of `task`.

        Success is judged against the episode's goal (`goal`, else grounded from the task
        sentence) as corrections leave it; a given `success` check (a benchmark's) is used
        instead unless a correction changed the goal.
        """
        self._reset_episode_state()
        st = self.state
        self.task = task
        self.episode_id = episode_id or new_episode_id()
        self.policy.reset()
        self.emit("task", task)
        if self.recorder:
            try:
                objects = [o.to_dict() for o in self.objects()]
            except CorrigoError:
                objects = []
            self.recorder.start_episode(task, {"policy": self.policy.version, "robot": self.robot.name, "objects": objects})
        reason, ok, policy_ended = "time limit reached", False, False
        try:
            self._observation = self.robot.get_observation()
            st.ctx.observation = self._observation
            if self.knowledge is not None:
                try:
                    self.task_knowledge = self.knowledge.for_task(task, self.objects())
                except CorrigoError as e:
                    self.emit("error", f"knowledge base: {e}")
            st.goal = self.original_goal = goal if goal is not None else self._ground_goal(task)
            while st.t < self.config.max_episode_s:
                self._drain()
                if st.stopped:
                    self._hold_tick()
                    continue
                if st.pending:
                    call, source = st.pending.pop(0)
                else:
                    nxt = self._next_from_policy()
                    if isinstance(nxt, Done):
                        if self._operator_objects():
                            continue
                        reason, ok, policy_ended = nxt.reason, nxt.ok, True
                        break
                    call, source = nxt, "policy"
                self._execute(call, source)
        except KeyboardInterrupt:
            reason = "interrupted by the operator (Ctrl-C)"
            self.robot.hold()
            raise
        except CorrigoError as e:
            reason = f"error: {e}"
            self.emit("error", str(e))
            self._safe_hold()
        finally:
            refused = policy_ended and not ok and not self.step_records  # it never started
            scene = self._scene()
            result_success, outcome = self._judge(success, reason, ok, refused, scene)
            goals = {"goal": self.original_goal.to_dict(scene or []) if self.original_goal else None,
                     "corrected_goal": st.goal.to_dict(scene or []) if st.goal else None,
                     "goal_changes": list(self.goal_changes)}
            if self.recorder:
                self.recorder.end_episode(result_success, {"done_reason": reason, "episode_id": self.episode_id,
                                                           "knowledge_applied": self.knowledge_applied,
                                                           "outcome": outcome.word, "outcome_reason": outcome.reason,
                                                           **goals})
        self.emit("done", str(outcome), success=result_success, outcome=outcome.word, reason=outcome.reason)
        result = EpisodeResult(task, result_success, reason, self.step_records, self.correction_records,
                               st.t, st.ticks, self.knowledge_applied, outcome, **goals)
        if self.knowledge is not None:
            try:
                for change in self.knowledge.end_episode(self.episode_log(result)):
                    self.emit("knowledge", change.describe(), id=change.item.id, change=change.change)
            except CorrigoError as e:  # the episode is kept even when the knowledge base fails
                self.emit("error", f"knowledge base: {e}")
        return result

    def _ground_goal(self, task: str) -> Goal | None:
        try:
            return ground_goal(task, self.objects(), self._observation, self.task_knowledge, self.library)
        except CorrigoError:
            return None

    def _scene(self) -> list[SceneObject] | None:
        """The body's scene, for judging success; None when it cannot report one."""
        if not isinstance(self.robot, SceneProvider):
            return None
        try:
            return list(self.robot.scene_objects())
        except CorrigoError:
            return None

    def _judge(self, success: Callable[[], bool | None] | None, reason: str, ended_ok: bool, refused: bool,
               scene: list[SceneObject] | None) -> tuple[bool | None, Outcome]:
        """Success and outcome: against the corrected goal when a correction changed it, else the task's own check."""
        goal = self.state.goal
        if refused:
            return None, Outcome(REFUSED, reason)
        why = [] if ended_ok else [reason]
        unmet = goal.unmet(scene) if goal is not None and scene is not None else None  # also explains a given check
        if success is not None and goal == self.original_goal:
            try:
                ok = success()
            except Exception as e:  # a broken success check must not lose the episode
                self.emit("error", f"success check failed: {e}")
                ok = None
            if ok:
                return True, Outcome(SUCCEEDED, goal.describe(scene, holds=True) if goal and scene and unmet == []
                                     else "its success check passed")
            if ok is not None:
                return False, Outcome(FAILED, "; ".join(why + (unmet or ["its success check did not pass"])))
        if goal is not None and scene is not None and unmet is not None:
            if unmet:
                return False, Outcome(FAILED, "; ".join(why + unmet))
            return True, Outcome(SUCCEEDED, goal.describe(scene, holds=True))
        if not ended_ok:
            return None, Outcome(FAILED, reason)
        # the policy's word ("task complete") is all there is
        if goal is None:
            return None, Outcome(UNKNOWN, f"{reason}; nothing to check: the task moves nothing")
        return None, Outcome(UNKNOWN, f"{reason}; nothing to check it on: {self.robot.name} cannot report its scene")

    def episode_log(self, result: EpisodeResult) -> EpisodeLog:
        """The ended episode as the knowledge base learns from it."""
        return EpisodeLog(self.episode_id, result.task, result.success, result.steps, result.corrections,
                          {k: dict(v) for k, v in self.state.episode_params.items()}, list(self.task_knowledge_used),
                          self.library.lexicon())

    def _operator_objects(self) -> bool:
        """Hold for `done_grace_s` after the policy says it is done; True if the operator gave more to do."""
        st = self.state
        if self.config.done_grace_s <= 0:
            return False
        st.finishing = True
        self.status["instruction"] = ""
        try:
            end = st.t + self.config.done_grace_s
            while st.t < min(end, self.config.max_episode_s):
                self._drain()
                if st.pending or st.stopped:
                    return True
                self._hold_tick()
            return False
        finally:
            st.finishing = False

    def _safe_hold(self) -> None:
        try:
            self.robot.hold()
        except CorrigoError:
            pass

    def observation_for_policy(self) -> dict[str, Any]:
        obs = dict(self._observation)
        obs["perception.objects"] = self.objects()
        return obs

    def _next_from_policy(self) -> SkillCall | Done:
        try:
            nxt = self.policy.next_step(self.observation_for_policy(), self.task, self.history, self.task_knowledge)
        except PolicyError as e:
            self.emit("error", str(e))
            return Done(str(e), ok=False)
        except Exception as e:  # a policy is a plugin: its bug ends the episode, not the process
            self._safe_hold()
            self.emit("error", f"policy {self.policy.name} failed: {type(e).__name__}: {e}")
            return Done(f"policy failed: {type(e).__name__}: {e}", ok=False)
        for item in self.policy.knowledge_used():
            if item.id not in self.task_knowledge_used:
                self.task_knowledge_used.append(item.id)
                self.knowledge_applied.append({"id": item.id, "statement": item.statement, "kind": item.kind, "step": None})
                ep = item.provenance.get("episode") or "?"
                self.emit("knowledge", f"using: {item.statement} (learned in episode {ep})", id=item.id)
        return nxt

    def _execute(self, call: SkillCall, source: str) -> None:
        """Run one skill call tick by tick, applying corrections between ticks."""
        st = self.state
        skill = self.library.get(call.skill)
        overrides: dict[str, Any] = {}
        step_index = len(self.step_records)
        objects = self.objects()
        self.step_knowledge = []
        speed_scale = None
        if self.knowledge is not None:
            try:
                self.step_knowledge = self.knowledge.for_step(self.task, call, objects, self._observation, step_index,
                                                              lexicon=self.library.lexicon())
            except CorrigoError as e:
                self.emit("error", f"knowledge base: {e}")
            for a in self.step_knowledge:
                overrides.update(a.overrides)
                speed_scale = a.speed_scale or speed_scale
                self.knowledge_applied.append({"id": a.id, "statement": a.item.statement, "kind": a.item.kind,
                                               "step": step_index, "overrides": a.overrides})
                self.emit("knowledge", a.describe(), id=a.id)
        overrides.update(st.episode_params.get(call.skill, {}))
        try:
            params = skill.default_params(overrides)
        except CorrigoError as e:
            self.emit("error", f"ignoring bad parameters for {call.skill}: {e}")
            params = skill.default_params()
        ctx = st.ctx
        ctx.reset_for_call(params)
        base_speed = ctx.speed_scale
        learned_speed = None
        if speed_scale is not None:  # a stored scale is finite (effects check it) but may be any size
            lo, hi = self.config.speed_scale_range
            ctx.speed_scale = learned_speed = min(max(base_speed * speed_scale, lo), hi)
        st.current, st.current_source = call, source
        st.intervening = source == "operator"
        st.interrupt = None
        instruction = self.library.render(call)
        self.status.update(instruction=instruction, step=len(self.step_records) + 1)
        t0 = st.t
        self.emit("step", instruction, source=source)
        gen = skill.run(self.robot, call, ctx)
        outcome: SkillOutcome | None = None
        interrupted = False
        while True:
            if st.t >= self.config.max_episode_s:
                outcome = SkillOutcome(False, "time limit reached")
                gen.close()
                break
            self._drain()
            if st.interrupt is not None:
                gen.close()
                interrupted = True
                outcome = SkillOutcome(False, f"interrupted: {st.interrupt}")
                break
            if st.stopped:
                self._hold_tick()
                continue
            try:
                action = next(gen)
            except StopIteration as stop:
                outcome = stop.value if isinstance(stop.value, SkillOutcome) else SkillOutcome(True)
                break
            except CorrigoError as e:
                outcome = SkillOutcome(False, str(e))
                break
            except Exception as e:  # a skill is a plugin too: hold still and report, do not crash
                self._safe_hold()
                self.emit("error", f"skill {call.skill} failed: {type(e).__name__}: {e}")
                outcome = SkillOutcome(False, f"skill failed: {type(e).__name__}: {e}")
                break
            self._send(action, instruction)
        st.current = None
        if learned_speed is not None and ctx.speed_scale == learned_speed:
            ctx.speed_scale = base_speed  # a learned speed applies to its step only
        primary = self.library.lexicon().primary_slot(call.skill)
        rec = StepRecord(instruction, call.to_dict(), source, None if interrupted else outcome.ok, outcome.message,
                         t0, st.t, interrupted, _params_dict(ctx.params), [float(v) for v in ctx.offset],
                         float(ctx.yaw_offset), _resolved(call.args.get("object"), objects),
                         _resolved(call.args.get("target"), objects), [a.id for a in self.step_knowledge],
                         _resolved(call.args.get(primary) if primary else None, objects), ctx.phase)
        self.step_records.append(rec)
        self.history.append(Step(call, outcome, source, interrupted))
        if not outcome.ok and not interrupted and self.step_knowledge and self.knowledge is not None:
            self.knowledge.step_failed(step_index)
        self.emit("step_done", f"{'ok' if outcome.ok else ('interrupted' if interrupted else 'failed')}"
                  f"{': ' + outcome.message if outcome.message else ''}", ok=outcome.ok)

    # ----- ticks -----
    def _send(self, action: dict[str, Any], instruction: str) -> None:
        self._stamp_latency()  # this action is the first to reflect any correction just applied
        sent = self.robot.send_action(action)
        self.state.ctx.last_command = sent  # integrate from what the body really accepted
        self._after_tick(sent, instruction)

    def _hold_tick(self) -> None:
        """While stopped: run a pending nudge, else hold still."""
        ctx = self.state.ctx
        instruction = self.status.get("instruction", "")
        if self.aux is not None and self.aux_ctx is not None:
            self.aux_ctx.observation = self._observation
            try:
                action = next(self.aux)
                self._stamp_latency()
                sent = self.robot.send_action(action)
                self.aux_ctx.last_command = sent
                ctx.last_command = sent
                self._after_tick(sent, instruction, intervention=True)
                return
            except StopIteration:
                self.aux, self.aux_ctx = None, None
        self._stamp_latency()
        sent = self.robot.hold()
        ctx.last_command = sent
        self._after_tick(sent, instruction, intervention=True)

    def _stamp_latency(self) -> None:
        """Corrections applied since the last tick are reflected in the action about to be sent."""
        now = time.perf_counter()
        for rec, t_in in self._awaiting_latency:
            rec.latency_s = now - t_in
        self._awaiting_latency = []

    def _after_tick(self, sent: dict[str, Any], instruction: str, intervention: bool | None = None) -> None:
        st = self.state
        if self.recorder:
            source = "operator" if st.current_source == "operator" else "policy"
            self.recorder.add_frame(self._observation, sent, instruction,
                                    st.intervening if intervention is None else intervention, self._frame_events, source)
        self._frame_events = []
        st.ticks += 1
        st.t = st.ticks * self.robot.control_dt
        self.status["t"] = st.t
        self.status["stopped"] = st.stopped
        if self.config.realtime:
            # The schedule stays anchored (deadline += dt), so waking early for a correction
            # shifts one tick's phase without changing the average rate.
            self._deadline += self.robot.control_dt
            delay = self._deadline - time.perf_counter()
            if delay > 0:
                if self._wake.wait(delay):
                    self._wake.clear()
            elif delay < -1.0:  # far behind (a debugger, a slow render): do not try to catch up
                self._deadline = time.perf_counter()
        self._observation = self.robot.get_observation()
        st.ctx.observation = self._observation
        for observe in self.observers:  # e.g. a simulated operator watching the scene
            observe(self)

    # ----- corrections -----
    def _drain(self) -> None:
        with self._lock:
            while self._scheduled and self._scheduled[0][0] <= self.state.t + 1e-9:
                _, text = self._scheduled.pop(0)
                self._queue.put(_Queued(text, time.perf_counter(), "script"))
        while True:
            try:
                q = self._queue.get_nowait()
            except queue.Empty:
                return
            rec = self.correct(q.text, q.source)
            self._awaiting_latency.append((rec, q.t_wall))
            self._frame_events.append({"t": self.state.t, "text": q.text, "parsed": rec.parsed, "reply": rec.reply,
                                       "source": q.source})

    def view(self) -> EpisodeView:
        """A snapshot of the episode for the correction handler."""
        st, ctx = self.state, self.state.ctx
        try:
            objects = tuple(self.objects())
        except CorrigoError:
            objects = ()
        last = tuple(float(x) for x in st.last_motion) if st.last_motion is not None else None
        return EpisodeView(current=st.current, stopped=st.stopped, pending=tuple(c for c, _ in st.pending),
                           remaining=tuple(self.policy.remaining()), objects=objects, held=ctx.held,
                           params=_params_dict(ctx.params) if st.current is not None else None,
                           episode_params={k: dict(v) for k, v in st.episode_params.items()},
                           speed_scale=ctx.speed_scale, last_motion=last,  # type: ignore[arg-type]
                           phase=ctx.phase if st.current is not None else None, goal=st.goal)

    def correct(self, text: str, source: str = "operator") -> CorrectionRecord:
        """Parse, handle and carry out one utterance now; record it and reply."""
        c = parse(text, self.parser_config)
        view = self.view()
        context = describe_context(view, self.library)
        if self.state.ctx.observation:
            context["ee"] = [float(v) for v in self.state.ctx.observation["observation.state"][:7]]
        effects = handle(c, view, self.library, self.handler_config)
        shifts = [e for e in effects if isinstance(e, Shift)]
        if shifts:  # what the nudge did, for the distiller (with the phase it came in)
            context["shift"] = [float(sum(e.offset[i] for e in shifts)) for i in range(3)]
            context["yaw"] = float(sum(e.yaw for e in shifts))
        self._goal_changed = False
        reply, applied = self._apply(effects)
        if self._goal_changed and self.state.goal is not None:
            self.goal_changes.append({"t": self.state.t, "utterance": text,
                                      "goal": self.state.goal.to_dict(view.objects)})
        return self._record_correction(text, c, reply, applied, source, context)

    def _apply(self, effects: Sequence[Effect]) -> tuple[str, bool]:
        """Carry out a correction's effects, in order: the one place they change the episode."""
        st, ctx = self.state, self.state.ctx
        if not all(finite_effect(e) for e in effects):  # the episode never holds an inf/NaN offset, scale or parameter
            return NOT_FINITE_REPLY, False
        reply, applied = "ok", True
        for e in effects:
            if isinstance(e, Say):
                reply, applied = e.text, e.applied
            elif isinstance(e, Hold):
                st.stopped, self.aux = True, None
            elif isinstance(e, Resume):
                st.stopped, self.aux = False, None
            elif isinstance(e, Shift):
                ctx.offset = ctx.offset + np.asarray(e.offset, float)
                ctx.yaw_offset += e.yaw
            elif isinstance(e, RememberDirection):
                st.last_motion = np.asarray(e.direction, float)
            elif isinstance(e, RunNudge):
                self._run_aux(e.call)
            elif isinstance(e, Rescale):
                ctx.speed_scale = e.speed_scale
            elif isinstance(e, Interrupt):
                if st.current is not None:
                    st.interrupt = e.reason
                st.stopped = False
            elif isinstance(e, Enqueue):
                st.pending[0:0] = list(e.calls)
            elif isinstance(e, Retarget):
                n = self.policy.retarget(e.old, e.new, e.slot)
                if e.reply is not None:
                    reply, applied = e.reply.format(n=n, s="s" if n != 1 else ""), True
            elif isinstance(e, EditPlan):
                try:
                    answer = self.policy.edit_plan(e.edit, self.observation_for_policy())
                except PolicyError as err:
                    if e.otherwise is not None:
                        r = self._apply(e.otherwise)
                        return r
                    if e.say:
                        reply, applied = str(err), False
                    continue
                if e.say:
                    reply, applied = answer, True
                if e.goal is not None:
                    st.goal, self._goal_changed = e.goal, True
            elif isinstance(e, ChangeGoal):
                st.goal, self._goal_changed = e.goal, True
            elif isinstance(e, SetParam):
                if e.live and st.current is not None and st.current.skill == e.skill:
                    set_param(ctx.params, e.param, e.value)
                st.episode_params.setdefault(e.skill, {})[e.param] = e.value
            elif isinstance(e, MarkIntervention):
                st.intervening = True
        return reply, applied

    def _run_aux(self, call: SkillCall) -> None:
        """Run a small skill (a nudge, the gripper) while stopped, staying stopped."""
        ctx = self.state.ctx
        skill = self.library.get(call.skill)
        self.aux_ctx = SkillContext(objects=self.objects, dt=self.robot.control_dt, params=skill.default_params(),
                                    observation=ctx.observation, held=ctx.held, last_command=ctx.last_command)
        self.aux = skill.run(self.robot, call, self.aux_ctx)

    def _record_correction(self, text: str, correction: Correction, reply: str, applied: bool, source: str,
                           context: dict[str, Any]) -> CorrectionRecord:
        rec = CorrectionRecord(self.state.t, text, correction.to_dict(), reply, self.status.get("instruction") or None,
                               applied, source, context=context)
        self.correction_records.append(rec)
        self.status["stopped"] = self.state.stopped
        self.emit("reply", reply, utterance=text, correction_kind=correction.kind, applied=applied)
        return rec


def _resolved(desc: str | None, objects: list[SceneObject]) -> dict[str, Any] | None:
    if not desc:
        return None
    try:
        return resolve(desc, objects).to_dict()
    except CorrigoError:
        return None


def _params_dict(params: Any) -> dict[str, Any]:
    if params is None or not hasattr(params, "__dataclass_fields__"):
        return {}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(params).items()}


def summarize(result: EpisodeResult) -> str:
    """One line: the outcome and why, the goal if corrections changed it, and what it took."""
    n_ok = sum(1 for s in result.steps if s.ok)
    goal = ""
    if result.goal_changes and result.corrected_goal:
        by = ", ".join(repr(c["utterance"]) for c in result.goal_changes)
        goal = f"; goal corrected to {result.corrected_goal['text']} by {by}"
    return (f"{result.task!r}: {result.outcome}{goal}; {result.duration_s:.1f} s sim time, "
            f"{len(result.steps)} steps ({n_ok} ok), {len(result.corrections)} corrections")
