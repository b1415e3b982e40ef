"""The run loop, the correction handler, the episode recorder and the CLI."""
from agent.loop import Agent, AgentConfig, EpisodeResult

__all__ = ["Agent", "AgentConfig", "EpisodeResult"]
