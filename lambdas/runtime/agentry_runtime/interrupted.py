"""What an interrupted step left behind, settled before the history goes on without it.

A step writes its messages before the header that counts them, and a chain folds several
steps into one header write. A worker that dies in between leaves turns past the header whose
calls may have run, or a counted turn whose calls have no results yet. The step's redelivery
adopts them (``AgentLoop._plan``, ``AgentLoop._act``); but when the step never runs again (it
was dead-lettered, or its act failed before recording its calls), recovery asks for a new plan
or a person resumes the agent, and the next message would go right after the counted history:
over a turn whose calls may have taken effect (the model would never learn of them, and could
make them happen twice), or between a turn's calls and the results Converse requires after
them (every later plan would be refused).

:func:`settle` works out what that write must count and add first: each turn past the header
with a claimed call, with the results its worker recorded, and for every call still without a
result one the platform states (unknown if a worker claimed it, not executed otherwise; a
rejection is recorded first for such a call, so no late worker runs it). The resume
(``AgentService.resume``) and the plan (``AgentLoop._plan``) both call :func:`settle_stored`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agentry_runtime.state import (
    AgentHeader,
    ClaimStatus,
    Message,
    Origin,
    Outcome,
    TokenUsage,
    ToolClaim,
    ToolResult,
    ToolResultBlock,
    ToolUse,
    budgeted_uses,
    calls_ran,
)
from agentry_runtime.store import AgentStore

__all__ = [
    "NOT_RUN_REASON",
    "Settlement",
    "claim_statement",
    "settle",
    "settle_stored",
    "stated_result",
]

#: Recorded as the rejection of a call its interrupted step never ran.
NOT_RUN_REASON = "its step was interrupted before it ran"


@dataclass(frozen=True)
class Settlement:
    """What a person's write counts and adds after the header's history (empty: nothing)."""

    #: Messages already stored past the header, counted as they are.
    adopted: list[Message] = field(default_factory=list)
    #: Results the platform states for calls without one, to write with the person's message.
    written: list[Message] = field(default_factory=list)
    #: Calls with no claim, or an approval no worker took: reject them before writing.
    unrun: list[ToolClaim] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many messages the write counts before the person's own."""
        return len(self.adopted) + len(self.written)

    @property
    def results(self) -> list[Message]:
        """Every result message counted, adopted or stated."""
        return [m for m in (*self.adopted, *self.written) if m.outcome is not None]

    @property
    def calls_run(self) -> int:
        """Calls that ran or may have (as ``tool_call_count`` counts them)."""
        return calls_ran(self.results)

    def tool_uses(self, before: Mapping[str, int]) -> dict[str, int]:
        """``before`` plus the calls a tool budget counts among the results."""
        return budgeted_uses(before, self.results)

    def usage(self, before: TokenUsage) -> TokenUsage:
        """``before`` plus the tokens of the adopted turns (their model calls happened)."""
        total = before
        for message in self.adopted:
            if message.role == "assistant" and message.usage is not None:
                total = total.plus(message.usage)
        return total


def settle(
    agent_id: str,
    count: int,
    stored: Sequence[Message],
    claims: Mapping[tuple[int, str], ToolClaim],
    *,
    step: int,
) -> Settlement:
    """What to count and write after the ``count`` messages a header counts.

    ``stored`` holds the last counted message and every one past it (as one query returns
    them); ``claims`` the claim records of those turns by ``(turn seq, tool use id)``; ``step``
    is the step of the person's write (the results it states carry it).
    """
    by_seq = {m.seq: m for m in stored}
    adopted: list[Message] = []
    written: list[Message] = []
    unrun: list[ToolClaim] = []
    turn = by_seq.get(count - 1)
    if turn is None or turn.role != "assistant" or not turn.tool_uses():
        turn = _claimed_turn(by_seq.get(count), claims)
        if turn is not None:
            adopted.append(turn)
    while turn is not None:
        stated = False
        for index, call in enumerate(turn.tool_uses()):
            seq = turn.seq + 1 + index
            result = by_seq.get(seq)
            if result is not None and _answers(result, call):
                adopted.append(result)
                continue
            claim = claims.get((turn.seq, call.tool_use_id))
            text, outcome = claim_statement(claim)
            if outcome == Outcome.SKIPPED and (
                claim is None or claim.status != ClaimStatus.REJECTED
            ):
                unrun.append(_rejection(agent_id, turn.seq, seq, call))
            written.append(stated_result(seq, step, call, text, outcome))
            stated = True
        if stated:
            break  # past a call left unanswered, nothing of this step's chain can follow
        turn = _claimed_turn(by_seq.get(turn.seq + 1 + len(turn.tool_uses())), claims)
        if turn is not None:
            adopted.append(turn)
    return Settlement(adopted=adopted, written=written, unrun=unrun)


def settle_stored(
    store: AgentStore, header: AgentHeader, stored: Sequence[Message], *, step: int
) -> Settlement:
    """:func:`settle` over the claims in the store; a call never run is rejected first (then
    the claims are read again: a worker that took it meanwhile makes its outcome unknown)."""

    def settled() -> Settlement:
        claims = {
            (c.turn_seq, c.tool_use_id): c
            for m in stored
            if m.role == "assistant" and m.tool_uses()
            for c in store.claims(header.agent_id, m.seq)
        }
        return settle(header.agent_id, header.message_count, stored, claims, step=step)

    first = settled()
    if not first.unrun:
        return first
    for claim in first.unrun:
        store.withhold(claim, ttl=header.ttl)
    return settled()


def stated_result(seq: int, step: int, call: ToolUse, text: str, outcome: Outcome) -> Message:
    """A call's result in the platform's words (the tool said nothing): an error to the model."""
    return Message(
        seq=seq,
        role="user",
        content=[
            ToolResultBlock(
                tool_result=ToolResult(
                    tool_use_id=call.tool_use_id, content=[{"text": text}], status="error"
                )
            )
        ],
        step=step,
        origin=Origin.TOOL,
        outcome=outcome,
        tool_name=call.name,
    )


def _claimed_turn(
    message: Message | None, claims: Mapping[tuple[int, str], ToolClaim]
) -> Message | None:
    """``message`` if it is a turn past the header with a call some worker claimed (it may
    have had effects); a turn none of whose calls was claimed changed nothing, and is left."""
    if message is None or message.role != "assistant":
        return None
    if any((message.seq, call.tool_use_id) in claims for call in message.tool_uses()):
        return message
    return None


def _answers(message: Message, call: ToolUse) -> bool:
    results = message.tool_results()
    return message.role == "user" and [r.tool_use_id for r in results] == [call.tool_use_id]


def claim_statement(claim: ToolClaim | None) -> tuple[str, Outcome]:
    """What the platform tells the model of a call with no recorded result, from its claim:
    never run (no claim, an approval nobody took, or withheld), rejected, or unknown (claimed,
    and its worker stopped before recording the outcome: it may have taken effect)."""
    if (
        claim is None
        or claim.status == ClaimStatus.APPROVED
        or (claim.status == ClaimStatus.REJECTED and claim.reason == NOT_RUN_REASON)
    ):
        return (
            "Not executed: the step that was to run this call was interrupted before it ran.",
            Outcome.SKIPPED,
        )
    if claim.status == ClaimStatus.REJECTED:
        reason = f" ({claim.reason})" if claim.reason else ""
        return f"Not executed: a person rejected this call{reason}.", Outcome.REJECTED
    return (
        "Outcome unknown: the worker running this call stopped before recording its outcome, "
        "so it may or may not have taken effect. Check before calling it again.",
        Outcome.UNKNOWN,
    )


def _rejection(agent_id: str, turn_seq: int, result_seq: int, call: ToolUse) -> ToolClaim:
    return ToolClaim(
        agent_id=agent_id,
        turn_seq=turn_seq,
        tool_use_id=call.tool_use_id,
        name=call.name,
        result_seq=result_seq,
        status=ClaimStatus.REJECTED,
        decided_by="platform",
        reason=NOT_RUN_REASON,
    )
