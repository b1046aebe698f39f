"""Plain data types shared by every stage: a scored conversation, a preference pair and the
benchmark rows (RM-Bench, RewardBench 2) that compare several responses at once."""

from __future__ import annotations

from dataclasses import dataclass, field

Message = tuple[str, str]
"""One chat turn as (role, content); role is "system", "user" or "assistant"."""


@dataclass(frozen=True)
class Conversation:
    """A response to be scored, with the conversation that precedes it."""

    messages: tuple[Message, ...]  # turns before the response, oldest first
    response: str  # the final assistant response that the reward model scores

    @classmethod
    def from_prompt(cls, prompt: str, response: str) -> Conversation:
        """A single-turn conversation: one user prompt and the response."""
        return cls(messages=(("user", prompt),), response=response)

    @property
    def prompt_text(self) -> str:
        """The last user turn (what most reports show as "the prompt")."""
        for role, content in reversed(self.messages):
            if role == "user":
                return content
        return ""


@dataclass(frozen=True)
class PreferencePair:
    """A labelled comparison: `chosen` was preferred over `rejected`."""

    chosen: Conversation
    rejected: Conversation
    id: str = ""  # stable identifier within its source (e.g. "file.jsonl:17")
    subset: str | None = None  # RewardBench subset or RM-Bench domain, when known
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class RMBenchItem:
    """One RM-Bench prompt: 3 chosen and 3 rejected responses (concise, detailed, markdown)."""

    id: str
    domain: str  # "chat", "code", "math" or "safety" (safety-refuse/-response pooled)
    subset: str  # the file's own subset name, e.g. "safety-response"
    messages: tuple[Message, ...]
    chosen: tuple[str, str, str]
    rejected: tuple[str, str, str]


@dataclass(frozen=True)
class RewardBench2Item:
    """One RewardBench 2 row: a prompt, its correct and incorrect completions.

    Outside the Ties subset a row is usually best-of-4 (1 chosen, 3 rejected); Ties rows
    hold several correct answers. `num_correct` is the number of chosen completions.
    """

    id: str  # the row id; Ties rows use "ref:<n>" / "tied:<n>" (the reference splits on ":")
    subset: str  # "Factuality", "Precise IF", "Math", "Safety", "Focus" or "Ties"
    messages: tuple[Message, ...]
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]
    num_correct: int
