"""`corrigo eval`: the learning-from-corrections benchmark with a simulated operator."""
from __future__ import annotations

import argparse

from agent.cli import _EXTRA_PARSERS, command
from agent.cli_args import check_out_dir, fraction, int_in, positive_int, seed


def _parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="learning-from-corrections benchmark: rounds with a simulated operator")
    p.add_argument("--suite", default="smoke", help="smoke (small, for CI), standard, or adversarial (situations that tempt wrong lessons)")
    p.add_argument("--rounds", type=positive_int, help="rounds over the suite (default: the suite's)")
    p.add_argument("--episodes", type=positive_int, help="episodes per scenario and round (default: the suite's)")
    p.add_argument("--robot", default="sim:pybullet", help="sim:pybullet or sim:mujoco")
    p.add_argument("--out", default="eval_out", help="output directory (eval_info.json, eval.png, report.md, kb.sqlite)")
    p.add_argument("--workers", type=int_in(1, 64), default=2, help="parallel episode processes (1..64)")
    p.add_argument("--start-seed", type=seed, default=0)
    p.add_argument("--noise", type=fraction, default=0.0, help="operator noise: vague amounts, the odd wrong word (0..1)")
    p.add_argument("--no-baseline", action="store_true", help="skip the same episodes without a knowledge base")


_EXTRA_PARSERS.append(_parser)


@command("eval")
def cmd_eval(args: argparse.Namespace) -> int:
    from agent.eval import EvalConfig, run_suite

    check_out_dir(args.out, "--out")
    cfg = EvalConfig(suite=args.suite, rounds=args.rounds, episodes=args.episodes, robot=args.robot, out=args.out,
                     workers=args.workers, start_seed=args.start_seed, noise=args.noise, baseline=not args.no_baseline)
    info = run_suite(cfg)
    print(open(f"{args.out}/report.md").read())
    print(f"wrote {args.out}/eval_info.json, {args.out}/eval.png, {args.out}/report.md")
    return 0
